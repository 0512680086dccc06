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
