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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx

from .provider_http import HTTPStreamError, StreamClient

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


def split_lines(data: bytes) -> tuple[list[str], bytes]:
    """The complete lines of an event stream read so far, and the bytes after
    the last line break. UTF-8 is decoded a whole line at a time, so a
    character split across two reads stays intact. CR LF and a lone CR end a
    line too (SSE allows all three; a lone CR is split at the next LF)."""
    *lines, rest = data.split(b"\n")
    text: list[str] = []
    for line in lines:
        decoded = line.decode("utf-8", "replace")
        text += decoded.split("\r") if "\r" in decoded else [decoded]
    return text, rest


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

    def body(self, messages: list[dict[str, str]]) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)

    def _parse_line(self, line: str) -> tuple[list[str], bool]:
        """One server-sent line: its text deltas, and whether the answer ended."""
        if not line.startswith("data:"):
            return [], False
        data = line[5:].strip()
        if data == "[DONE]":
            return [], True
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProviderError("stream", f"{self.url} sent a malformed event: {data[:100]}") from exc
        if isinstance(chunk, dict) and "error" in chunk:
            raise ProviderError("http", f"{self.url} streamed an error: {str(chunk['error'])[:300]}")
        deltas, finished = [], False
        for choice in chunk.get("choices") or []:
            delta = (choice.get("delta") or {}).get("content")
            if delta:
                deltas.append(delta)
            if choice.get("finish_reason"):
                finished = True
        return deltas, finished

    def _parse_lines(self, lines) -> tuple[list[str], bool, bool]:
        """Complete server-sent lines: their text deltas, whether the answer
        ended (a finish reason or [DONE]), and whether [DONE] itself came
        (nothing after it is read)."""
        out: list[str] = []
        finished = False
        for line in lines:
            deltas, done = self._parse_line(line)
            out.extend(deltas)
            if done:
                finished = True
                if line.startswith("data:") and line[5:].strip() == "[DONE]":
                    return out, True, True
        return out, finished, False

    async def _sse_deltas(self, chunks, state: dict) -> AsyncIterator[str]:
        """The text deltas of a server-sent event stream read as byte
        ``chunks``, up to [DONE]; ``state["finished"]`` says whether the
        answer ended (a finish reason or [DONE])."""
        buffer = b""
        async for chunk in chunks:
            lines, buffer = split_lines(buffer + chunk if buffer else chunk)
            deltas, done, last = self._parse_lines(lines)
            for delta in deltas:
                yield delta
            state["finished"] = state["finished"] or done
            if last:
                return
        if buffer:  # a last line without its line break
            deltas, done = self._parse_line(buffer.decode("utf-8", "replace"))
            for delta in deltas:
                yield delta
            state["finished"] = state["finished"] or done

    def _http_error(self, exc: httpx.HTTPError) -> ProviderError:
        url = self.url
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError("timeout", f"{url}: timed out ({type(exc).__name__})")
        if isinstance(exc, httpx.ConnectError):
            return ProviderError("connection", f"{url}: cannot connect ({exc})")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return ProviderError("stream", f"{url}: connection dropped mid-answer ({exc})")
        return ProviderError("connection", f"{url}: {type(exc).__name__}: {exc}")

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yield text deltas; raise ProviderError on any failure, including a
        stream that ends without ``[DONE]`` or a finish reason."""
        url = self.url
        finished = False
        try:
            with (
                httpx.Client(timeout=self.http_timeout()) as client,
                client.stream("POST", url, json=self.body(messages), headers=self.headers()) as resp,
            ):
                if resp.status_code >= 400:
                    text = resp.read().decode("utf-8", "replace")[:300]
                    raise ProviderError("http", f"{url} answered {resp.status_code}: {text}")
                buffer = b""
                for chunk in resp.iter_bytes():
                    lines, buffer = split_lines(buffer + chunk)
                    for line in lines:
                        deltas, done = self._parse_line(line)
                        yield from deltas
                        if done:
                            finished = True
                            if line.startswith("data:") and line[5:].strip() == "[DONE]":
                                return
                if buffer:  # a last line without its line break
                    deltas, done = self._parse_line(buffer.decode("utf-8", "replace"))
                    yield from deltas
                    finished = finished or done
        except ProviderError:
            raise
        except httpx.HTTPError as exc:
            raise self._http_error(exc) from exc
        if not finished:
            raise ProviderError("stream", f"{url}: the stream ended before [DONE]")

    async def astream(
        self, messages: list[dict[str, str]], client: StreamClient | httpx.AsyncClient
    ) -> AsyncIterator[str]:
        """``stream`` for the event loop: the same deltas and errors, over a
        shared ``arena.provider_http.StreamClient`` (arena.live keeps one per
        event loop, with keep-alive connections per provider). A URL the
        environment sends through a proxy, or an ``httpx.AsyncClient`` given
        instead, is read with httpx. Closing the generator (or cancelling its
        task) closes the provider's connection, so no answer runs on unseen."""
        if isinstance(client, httpx.AsyncClient):
            async for delta in self._astream_httpx(messages, client):
                yield delta
            return
        if client.uses_proxy(self.url):
            async for delta in self._astream_httpx(messages, client.httpx_client()):
                yield delta
            return
        url = self.url
        headers = self.headers()
        body = json.dumps(self.body(messages), ensure_ascii=False, separators=(",", ":")).encode()
        finished = False
        resp = None
        try:
            resp = await client.post(
                url, headers, body, connect_timeout=self.connect_timeout, read_timeout=self.timeout
            )
            if resp.status >= 400:
                text = (await resp.read_all(4096)).decode("utf-8", "replace")[:300]
                raise ProviderError("http", f"{url} answered {resp.status}: {text}")
            state = {"finished": False}
            try:
                async for delta in self._sse_deltas(_chunks(resp), state):
                    yield delta
            finally:
                finished = state["finished"]
        except HTTPStreamError as exc:
            raise self._transport_error(exc) from exc
        finally:
            if resp is not None:
                # After [DONE] the connection is kept for the next answer; an
                # answer left half way (the voter left) closes it.
                resp.close(drain=finished)
        if not finished:
            raise ProviderError("stream", f"{url}: the stream ended before [DONE]")

    def _transport_error(self, exc: HTTPStreamError) -> ProviderError:
        url = self.url
        if exc.kind == "timeout":
            return ProviderError("timeout", f"{url}: timed out ({exc})")
        if exc.kind == "stream":
            return ProviderError("stream", f"{url}: connection dropped mid-answer ({exc})")
        return ProviderError("connection", f"{url}: {exc}")

    async def _astream_httpx(self, messages: list[dict[str, str]], client: httpx.AsyncClient) -> AsyncIterator[str]:
        """``astream`` over an ``httpx.AsyncClient`` (a proxied provider)."""
        url = self.url
        finished = False
        try:
            async with client.stream(
                "POST", url, json=self.body(messages), headers=self.headers(), timeout=self.http_timeout()
            ) as resp:
                if resp.status_code >= 400:
                    text = (await resp.aread()).decode("utf-8", "replace")[:300]
                    raise ProviderError("http", f"{url} answered {resp.status_code}: {text}")
                state = {"finished": False}
                async for delta in self._sse_deltas(resp.aiter_bytes(), state):
                    yield delta
                finished = state["finished"]
        except ProviderError:
            raise
        except httpx.HTTPError as exc:
            raise self._http_error(exc) from exc
        if not finished:
            raise ProviderError("stream", f"{url}: the stream ended before [DONE]")

    def complete(self, messages: list[dict[str, str]]) -> str:
        return "".join(self.stream(messages))


async def _chunks(resp) -> AsyncIterator[bytes]:
    """The body of a provider_http response, chunk by chunk, until it ends."""
    while chunk := await resp.read():
        yield chunk
