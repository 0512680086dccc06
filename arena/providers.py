"""Model providers: where an answer comes from.

``OpenAICompatible`` speaks the chat-completions API with server-sent events
(OpenAI, vLLM, Ollama, llama.cpp's server, TGI, OpenRouter, Together, …).
The API key is read from an environment variable whose *name* is stored in
the model's settings; the key itself never touches the database.

Errors are ``ProviderError`` with a ``kind`` (timeout, connection, http,
stream, config) and two texts: ``public`` names no model, endpoint or status
line and is safe to show a voter before the vote; ``detail`` is for
operators (admin, logs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

PUBLIC_MESSAGES = {
    "timeout": "the model took too long to answer",
    "connection": "the model could not be reached",
    "http": "the model's service returned an error",
    "stream": "the answer stopped half way",
    "config": "the model is not configured correctly",
    "busy": "the model is busy; try again in a moment",
}


class ProviderError(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail

    @property
    def public(self) -> str:
        return PUBLIC_MESSAGES.get(self.kind, "the model failed")


@dataclass
class OpenAICompatible:
    base_url: str
    model: str
    api_key_env: str = ""
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout: float = 60.0
    connect_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: dict) -> OpenAICompatible:
        try:
            base_url = str(settings["base_url"]).rstrip("/")
            model = str(settings["model"])
        except KeyError as exc:
            raise ProviderError("config", f"provider settings need {exc.args[0]!r}") from exc
        return cls(
            base_url=base_url,
            model=model,
            api_key_env=str(settings.get("api_key_env", "")),
            temperature=float(settings.get("temperature", 0.7)),
            max_tokens=int(settings.get("max_tokens", 1024)),
            timeout=float(settings.get("timeout", 60.0)),
        )

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ProviderError("config", f"environment variable {self.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield text deltas; raise ProviderError on any failure, including a
        stream that ends without ``[DONE]`` or a finish reason."""
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        url = f"{self.base_url}/chat/completions"
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        finished = False
        try:
            with httpx.Client(timeout=timeout) as client, client.stream(
                "POST", url, json=body, headers=self.headers()
            ) as resp:
                if resp.status_code >= 400:
                    text = resp.read().decode("utf-8", "replace")[:300]
                    raise ProviderError("http", f"{url} answered {resp.status_code}: {text}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    try:
                        chunk = json.loads(data)
                    except json.JSONDecodeError as exc:
                        raise ProviderError("stream", f"{url} sent a malformed event: {data[:100]}") from exc
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise ProviderError("http", f"{url} streamed an error: {str(chunk['error'])[:300]}")
                    for choice in chunk.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            yield delta
                        if choice.get("finish_reason"):
                            finished = True
        except ProviderError:
            raise
        except httpx.TimeoutException as exc:
            raise ProviderError("timeout", f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            raise ProviderError("connection", f"{url}: cannot connect ({exc})") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ProviderError("stream", f"{url}: connection dropped mid-answer ({exc})") from exc
        except httpx.HTTPError as exc:
            raise ProviderError("connection", f"{url}: {type(exc).__name__}: {exc}") from exc
        if not finished:
            raise ProviderError("stream", f"{url}: the stream ended before [DONE]")

    def complete(self, messages: list[dict[str, str]]) -> str:
        return "".join(self.stream(messages))
