"""A small real HTTP server on 127.0.0.1 that speaks the OpenAI-compatible
chat-completions streaming protocol, for the provider tests.

Behaviour is scripted per model id (the ``model`` field of the request):
    server.script("m1", text="Hello there", delay=0.01)          # streams word by word
    server.script("m2", status=500)                              # HTTP error
    server.script("m3", cut_after=3)                             # closes mid-stream, no [DONE]
    server.script("m4", delay=5)                                 # slow: client times out
    server.script("m5", turns=["first answer", "second answer"])  # one text per user turn
Unknown models answer "echo: <last user message>".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    text: str | None = None
    delay: float = 0.0
    status: int = 200
    cut_after: int | None = None
    turns: list[str] | None = None
    calls: int = 0
    requests: list = field(default_factory=list)


class LocalChatServer:
    """A real HTTP server on 127.0.0.1 (a free port) whose POSTs go to
    ``self.handle(handler, body)``: the plumbing the fake provider and the
    fake judge (tests/fake_judge.py) share."""

    def _serve(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def handle(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def send_json(h: BaseHTTPRequestHandler, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeOpenAI(LocalChatServer):
    def __init__(self):
        self.scripts: dict[str, Script] = {}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._serve()

    def script(self, model: str, **kwargs) -> Script:
        s = Script(**kwargs)
        self.scripts[model] = s
        return s

    def handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        model = body.get("model", "")
        script = self.scripts.get(model) or Script()
        with self.lock:
            script.calls += 1
            script.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if script.status != 200:
                self.send_json(h, script.status, {"error": {"message": "scripted failure", "code": script.status}})
                return
            messages = body.get("messages") or []
            last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
            asked = sum(1 for m in messages if m.get("role") == "user")
            if script.turns:
                text = script.turns[min(asked, len(script.turns)) - 1]
            else:
                text = script.text if script.text is not None else f"echo: {last}"
            words = text.split(" ")
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Cache-Control", "no-cache")
            h.send_header("Connection", "close")
            h.end_headers()
            for i, word in enumerate(words):
                if script.cut_after is not None and i >= script.cut_after:
                    h.wfile.flush()
                    h.close_connection = True
                    return  # connection closes without [DONE]
                if script.delay:
                    time.sleep(script.delay)
                piece = word if i == 0 else " " + word
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                h.wfile.flush()
            end = {
                "id": "x",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            h.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.lock:
                self.in_flight -= 1
