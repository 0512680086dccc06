"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

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
