"""Keep-alive connections are closed now and then (WEB_KEEPALIVE_REQUESTS,
arena/project/asgi.py), so new connections spread over the web processes
again; with it off a connection is kept. Real uvicorn on 127.0.0.1."""

from __future__ import annotations

import http.client

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def requests_on_one_connection(url: str, n: int) -> list[str | None]:
    """The Connection header of each of n GETs sent on one keep-alive
    connection, stopping when the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    seen = []
    try:
        for _ in range(n):
            conn.request("GET", "/api/v1/csrf/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            seen.append(response.getheader("Connection"))
            if response.will_close:
                break
    finally:
        conn.close()
    return seen


def test_every_response_closes_its_connection_at_one_request_per_connection(settings, asgi_server):
    settings.WEB_KEEPALIVE_REQUESTS = 1
    assert requests_on_one_connection(asgi_server.url, 3) == ["close"]


def test_a_connection_lasts_about_n_requests(settings, asgi_server):
    settings.WEB_KEEPALIVE_REQUESTS = 5
    lengths = [len(requests_on_one_connection(asgi_server.url, 200)) for _ in range(20)]
    assert max(lengths) < 200  # every connection was closed at some point
    assert 2 <= sum(lengths) / len(lengths) <= 15  # 5 on average (a geometric draw: wide margins)


def test_with_it_off_a_connection_is_kept(settings, asgi_server):
    settings.WEB_KEEPALIVE_REQUESTS = 0
    assert requests_on_one_connection(asgi_server.url, 30) == [None] * 30
