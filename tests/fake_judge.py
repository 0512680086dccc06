"""A local OpenAI-compatible judge: a real HTTP server on 127.0.0.1 that
reads the two answers out of the MT-bench-style judge prompt and answers
with a short reason and a verdict, by a deterministic rule chosen by the
request's ``model``:

    longer      [[A]] or [[B]] for the longer answer, [[C]] when equal
    shorter     the shorter answer
    first       always [[A]]: position-biased, flips when the answers swap
    tie         always [[C]]
    noverdict   a reason and no verdict (an error for the arena)
    fail        HTTP 500
    flaky-N     HTTP 500 for the first N calls, then "longer"
    slow-S      "longer" after sleeping S seconds (concurrency tests)
    sse-RULE    RULE, streamed even when the request asks for no stream

Answers a chat.completion JSON object when the request has "stream": false
(as judges ask), server-sent events otherwise, like tests/fake_openai.py.

Used by the judge tests and bench/bench_judge.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

from tests.fake_openai import LocalChatServer

ANSWER_RE = {
    side: re.compile(
        rf"\[The Start of Assistant {side}'s Answer\]\n(.*?)\n\[The End of Assistant {side}'s Answer\]", re.DOTALL
    )
    for side in "AB"
}


def answers(prompt: str) -> tuple[str, str]:
    found = [ANSWER_RE[s].search(prompt) for s in "AB"]
    return tuple(m.group(1) if m else "" for m in found)  # type: ignore[return-value]


def verdict_text(rule: str, prompt: str) -> str:
    a, b = answers(prompt)
    if rule in ("longer", "shorter"):
        if len(a) == len(b):
            return "Both answers are equally long. [[C]]"
        a_wins = (len(a) > len(b)) == (rule == "longer")
        return f"Assistant {'A' if a_wins else 'B'}'s answer is {rule}. [[{'A' if a_wins else 'B'}]]"
    if rule == "first":
        return "The first answer is better. [[A]]"
    if rule == "tie":
        return "They are equally good. [[C]]"
    if rule == "noverdict":
        return "I cannot decide which answer is better."
    raise ValueError(rule)


class FakeJudge(LocalChatServer):
    def __init__(self):
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.prompts: list[tuple[str, str]] = []  # (model, user prompt)
        self.requests: list[dict] = []  # request bodies
        self._serve()

    def handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        rule = str(body.get("model", ""))
        messages = body.get("messages") or []
        prompt = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        with self.lock:
            self.calls[rule] += 1
            n = self.calls[rule]
            self.prompts.append((rule, prompt))
            self.requests.append(body)
            self.in_flight[rule] += 1
            self.max_in_flight[rule] = max(self.max_in_flight[rule], self.in_flight[rule])
        stream = body.get("stream", False) is not False
        try:
            if rule.startswith("sse-"):
                rule, stream = rule[4:], True
            if rule.startswith("slow-"):
                time.sleep(float(rule[5:]))
                rule = "longer"
            if rule.startswith("flaky-"):
                rule = "fail" if n <= int(rule[6:]) else "longer"
            if rule == "fail":
                self.send_json(h, 500, {"error": {"message": "scripted judge failure"}})
                return
            text = verdict_text(rule, prompt)
            if not stream:
                self.send_json(h, 200, {
                    "id": "x", "object": "chat.completion", "model": body.get("model", ""),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                })  # fmt: skip
                return
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Connection", "close")
            h.end_headers()
            for i, word in enumerate(text.split(" ")):
                piece = word if i == 0 else " " + word
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            h.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.lock:
                self.in_flight[body.get("model", "")] -= 1
