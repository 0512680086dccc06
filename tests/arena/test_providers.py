"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket

import pytest

from arena.providers import OpenAICompatible, ProviderError
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def server():
    s = FakeOpenAI().start()
    yield s
    s.stop()


def provider(server, model, **kw):
    return OpenAICompatible.from_settings({"base_url": server.base_url, "model": model, **kw})


def test_streams_deltas_in_order(server):
    server.script("m", text="The quick brown fox")
    parts = list(provider(server, "m").stream([{"role": "user", "content": "hi"}]))
    assert len(parts) == 4 and "".join(parts) == "The quick brown fox"
    sent = server.scripts["m"].requests[0]
    assert sent["stream"] is True and sent["model"] == "m" and sent["messages"][0]["content"] == "hi"


def test_api_key_comes_from_the_named_environment_variable(server, monkeypatch):
    monkeypatch.setenv("ARENA_TEST_KEY", "sk-test")
    p = provider(server, "m", api_key_env="ARENA_TEST_KEY")
    assert p.headers()["Authorization"] == "Bearer sk-test"
    monkeypatch.delenv("ARENA_TEST_KEY")
    with pytest.raises(ProviderError) as err:
        p.complete([{"role": "user", "content": "x"}])
    assert err.value.kind == "config" and "ARENA_TEST_KEY" in err.value.detail


def test_http_error_is_reported_with_status_for_operators_only(server):
    server.script("bad", status=503)
    with pytest.raises(ProviderError) as err:
        provider(server, "bad").complete([{"role": "user", "content": "x"}])
    assert err.value.kind == "http" and "503" in err.value.detail
    assert "503" not in err.value.public and "bad" not in err.value.public


def test_stream_cut_half_way_is_an_error_not_a_short_answer(server):
    server.script("cut", text="one two three four five six", cut_after=3)
    got = []
    with pytest.raises(ProviderError) as err:
        for piece in provider(server, "cut").stream([{"role": "user", "content": "x"}]):
            got.append(piece)
    assert err.value.kind == "stream"
    assert "".join(got) == "one two three"


def test_timeout(server):
    server.script("slow", text="a b", delay=2.0)
    with pytest.raises(ProviderError) as err:
        provider(server, "slow", timeout=0.3).complete([{"role": "user", "content": "x"}])
    assert err.value.kind == "timeout"


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAICompatible.from_settings({"base_url": f"http://127.0.0.1:{port}/v1", "model": "x"})
    with pytest.raises(ProviderError) as err:
        p.complete([{"role": "user", "content": "x"}])
    assert err.value.kind == "connection"


def test_missing_settings_are_a_config_error():
    with pytest.raises(ProviderError) as err:
        OpenAICompatible.from_settings({"model": "x"})
    assert err.value.kind == "config"


def test_event_lines_survive_any_split_of_the_bytes():
    """The stream is split into lines from raw reads (arena.providers.split_lines):
    a read may end anywhere, inside a multi-byte character or between CR and LF."""
    from arena.providers import split_lines

    body = 'data: {"x": "héllo wörld ✓"}\r\n\r\ndata: two\n\ndata: [DONE]\n\n'.encode()
    whole, rest = split_lines(body)
    assert rest == b"" and [line for line in whole if line] == ['data: {"x": "héllo wörld ✓"}', "data: two",
                                                                 "data: [DONE]"]  # fmt: skip
    for size in (1, 2, 3, 5, 7):
        lines, buffer = [], b""
        for start in range(0, len(body), size):
            got, buffer = split_lines(buffer + body[start : start + size])
            lines += got
        assert buffer == b"" and [line for line in lines if line] == [line for line in whole if line]


# --- the live path: astream over arena.provider_http.StreamClient --------------------------


def _collect(p: OpenAICompatible, client=None) -> list[str]:
    from arena.provider_http import StreamClient

    async def run():
        c = client or StreamClient()
        try:
            return [piece async for piece in p.astream([{"role": "user", "content": "hi"}], c)]
        finally:
            if client is None:
                c.close()

    return asyncio.run(run())


def test_astream_streams_the_same_deltas(server):
    server.script("m", text="The quick brown fox")
    parts = _collect(provider(server, "m"))
    assert parts == ["The", " quick", " brown", " fox"]
    sent = server.scripts["m"].requests[0]
    assert sent["stream"] is True and sent["model"] == "m" and sent["messages"][0]["content"] == "hi"


@pytest.mark.parametrize(
    ("script", "kw", "kind"),
    [
        ({"status": 503}, {}, "http"),
        ({"text": "one two three four five six", "cut_after": 3}, {}, "stream"),
        ({"text": "a b", "delay": 2.0}, {"timeout": 0.3}, "timeout"),
    ],
)
def test_astream_errors_are_the_streams(server, script, kw, kind):
    server.script("x", **script)
    with pytest.raises(ProviderError) as err:
        _collect(provider(server, "x", **kw))
    assert err.value.kind == kind
    if kind == "http":
        assert "503" in err.value.detail and "503" not in err.value.public


def test_astream_connection_refused_and_missing_key():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProviderError) as err:
        _collect(OpenAICompatible.from_settings({"base_url": f"http://127.0.0.1:{port}/v1", "model": "x"}))
    assert err.value.kind == "connection"
    with pytest.raises(ProviderError) as err:
        _collect(OpenAICompatible.from_settings({"base_url": f"http://127.0.0.1:{port}/v1", "model": "x",
                                                 "api_key_env": "ARENA_TEST_UNSET_KEY"}))  # fmt: skip
    assert err.value.kind == "config"


class KeepAliveServer:
    """An asyncio OpenAI-compatible server that answers in chunked encoding on
    kept-alive connections (as real providers do), counting connections."""

    def __init__(self, *, body: list[bytes] | None = None, status: int = 200, close_idle_after: float | None = None):
        self.connections = 0
        self.requests = 0
        self.disconnected = asyncio.Event()
        self.body = body
        self.status = status
        self.close_idle_after = close_idle_after

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    if self.close_idle_after is not None and self.requests:
                        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.close_idle_after)
                    else:
                        head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, TimeoutError):
                    return
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))  # fmt: skip
                await reader.readexactly(length)
                self.requests += 1
                writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Type: text/event-stream\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n".encode())  # fmt: skip
                pieces = self.body or [
                    b'data: {"choices": [{"delta": {"content": "h\xc3\xa9llo"}}]}\n\n',
                    b'data: {"choices": [{"delta": {"content": " world"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n',
                ]
                for piece in pieces:
                    if piece == b"HOLD":  # until the client goes away
                        await reader.read(1)
                        return
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.disconnected.set()
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *exc):
        self.server.close()


def test_astream_keeps_connections_alive_and_reads_chunked_bodies():
    from arena.provider_http import StreamClient

    async def run():
        async with KeepAliveServer() as srv:
            client = StreamClient()
            p = OpenAICompatible.from_settings({"base_url": srv.url, "model": "m"})
            answers = []
            for _ in range(3):
                answers.append([d async for d in p.astream([{"role": "user", "content": "hi"}], client)])
                await asyncio.sleep(0.01)  # the chunked terminator arrives
            client.close()
            return answers, srv.connections, srv.requests

    answers, connections, requests = asyncio.run(run())
    assert answers == [["héllo", " world"]] * 3
    assert requests == 3 and connections == 1


def test_a_kept_connection_the_server_closed_is_replaced():
    from arena.provider_http import StreamClient

    async def run():
        async with KeepAliveServer(close_idle_after=0.05) as srv:
            client = StreamClient()
            p = OpenAICompatible.from_settings({"base_url": srv.url, "model": "m"})
            first = [d async for d in p.astream([{"role": "user", "content": "hi"}], client)]
            await asyncio.sleep(0.2)  # the server closes the idle connection
            second = [d async for d in p.astream([{"role": "user", "content": "hi"}], client)]
            client.close()
            return first, second, srv.connections

    first, second, connections = asyncio.run(run())
    assert first == second == ["héllo", " world"] and connections == 2


def test_astream_http_error_on_a_chunked_response_and_a_malformed_event():
    from arena.provider_http import StreamClient

    async def run(**kw):
        async with KeepAliveServer(**kw) as srv:
            client = StreamClient()
            p = OpenAICompatible.from_settings({"base_url": srv.url, "model": "m"})
            try:
                return [d async for d in p.astream([{"role": "user", "content": "hi"}], client)]
            finally:
                client.close()

    with pytest.raises(ProviderError) as err:
        asyncio.run(run(status=429, body=[b'{"error": "slow down"}']))
    assert err.value.kind == "http" and "429" in err.value.detail and "slow down" in err.value.detail
    with pytest.raises(ProviderError) as err:
        asyncio.run(run(body=[b"data: {not json\n\n"]))
    assert err.value.kind == "stream"
    with pytest.raises(ProviderError) as err:  # the body ends without [DONE]
        asyncio.run(run(body=[b'data: {"choices": [{"delta": {"content": "half"}}]}\n\n']))
    assert err.value.kind == "stream"


def test_closing_astream_mid_answer_closes_the_providers_connection():
    from arena.provider_http import StreamClient

    async def run():
        async with KeepAliveServer(body=[b'data: {"choices": [{"delta": {"content": "one"}}]}\n\n', b"HOLD"]) as srv:
            client = StreamClient()
            p = OpenAICompatible.from_settings({"base_url": srv.url, "model": "m"})

            async def side():
                async for _ in p.astream([{"role": "user", "content": "hi"}], client):
                    pass

            task = asyncio.create_task(side())
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.wait_for(srv.disconnected.wait(), 2)
            client.close()
            return client._idle

    assert not any(asyncio.run(run()).values())
