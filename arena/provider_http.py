"""A small HTTP/1.1 client for the providers' event streams (arena.providers'
``astream``, the live battles of arena.live).

Why not httpx: under 500 live battles its per-request and per-read machinery
(anyio cancel scopes, h11's state machine, httpcore's pool, which scans every
connection on every request) was the largest share of the web process's CPU
(docs/LIVE.md "Measured"). A stream needs one thing: POST a JSON body and
read the response's bytes as they come. So this is an ``asyncio.Protocol``
per connection with httptools' C parser (status, headers, chunked or
length- or close-delimited bodies); reading a piece costs one parser call and,
when the reader waits, one future.

* Connections are kept alive per (scheme, host, port) and reused, LIFO, one
  request at a time each; an idle one is dropped after ``idle_seconds``. A
  request sent on a kept connection that the server closed meanwhile (no byte
  of an answer came back) is sent once more on a new one.
* Timeouts: ``connect_timeout`` for the TCP (and TLS) connection; a read
  times out when ``read_timeout`` seconds pass with no byte from the server,
  whether waiting for the headers or the body (httpx's read timeout). One
  timer per request, pushed back lazily: a byte received costs a float.
* Errors are ``HTTPStreamError``s with the ``kind`` arena.providers reports:
  ``connection`` (cannot connect), ``timeout``, ``stream`` (the connection
  dropped, or the response is not HTTP).
* Closing a response before its end (the reader stopped, or its task was
  cancelled) closes the connection, so no answer streams on unread.
* HTTPS uses the default trust store of ``ssl`` (certifi's when installed,
  as httpx). A proxy from the environment (HTTP(S)_PROXY, ALL_PROXY) is not
  spoken here: ``uses_proxy`` tells the caller to take httpx for that URL.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from urllib.parse import urlsplit

import httptools


class HTTPStreamError(Exception):
    kind = "connection"


class ConnectError(HTTPStreamError):
    kind = "connection"


class StreamTimeout(HTTPStreamError):
    kind = "timeout"


class ProtocolError(HTTPStreamError):
    kind = "stream"


_PAUSE_ABOVE = 256 * 1024  # bytes read but not yet consumed before the socket stops being read


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; one response at a time is parsed into it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.new_response()

    def new_response(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.header_list: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.error: HTTPStreamError | None = None
        self.waiter: asyncio.Future | None = None
        self.received = False
        self.last_read = self.loop.time()
        self.read_timeout = 0.0
        self.on_drained = None  # set while the rest of a response nobody reads is let through

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed HTTP response ({exc})"))
        if self.buffered > _PAUSE_ABOVE and not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._cancel_timer()
        self._wake()

    # -- httptools callbacks -----------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        # Read now: once the message is complete the parser no longer knows.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.on_drained is None:
            self.body.append(body)
            self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self._cancel_timer()
        drained, self.on_drained = self.on_drained, None
        if drained is not None:
            drained()

    def drain(self, then, timeout: float) -> None:
        """Discard the rest of this response, then call ``then`` (to keep the
        connection), unless it takes longer than ``timeout`` (close it)."""
        self.body.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        self._cancel_timer()
        self.on_drained = then
        self.timer = self.loop.call_later(timeout, self.close)

    # -- for the reader ----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: HTTPStreamError) -> None:
        if self.error is None:
            self.error = error
        self.close()

    def close(self) -> None:
        self._cancel_timer()
        if not self.closed:
            self.closed = True
            self.transport.close()
        self._wake()

    def start_timer(self, timeout: float) -> None:
        self.read_timeout = timeout
        self.last_read = self.loop.time()
        if timeout > 0:
            self.timer = self.loop.call_at(self.last_read + timeout, self._check_timeout)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_timeout(self) -> None:
        # Lazily pushed back: reading a byte only notes the time.
        self.timer = None
        if self.complete or self.closed:
            return
        due = self.last_read + self.read_timeout
        if self.loop.time() >= due:
            self._fail(StreamTimeout(f"no data for {self.read_timeout:g} s"))
        else:
            self.timer = self.loop.call_at(due, self._check_timeout)

    async def wait(self) -> None:
        waiter = self.waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None


class Response:
    """A response whose body is read as it comes (``read``), then ``close``d."""

    DRAIN_SECONDS = 5.0

    def __init__(self, client: StreamClient, key: tuple, conn: _Connection):
        self._client, self._key, self._conn = client, key, conn
        self.status = conn.parser.get_status_code()
        self.headers = dict(conn.header_list)
        chunked = b"chunked" in self.headers.get(b"transfer-encoding", b"").lower()
        # Neither a length nor chunks: the body ends when the server closes.
        self._until_close = not chunked and b"content-length" not in self.headers

    async def read(self) -> bytes:
        """The body's bytes received since the last call; b"" at its end.
        Raises HTTPStreamError (a timeout, a connection dropped before the end)."""
        conn = self._conn
        while True:
            body = conn.body
            if body:
                data = body[0] if len(body) == 1 else b"".join(body)
                body.clear()
                conn.buffered = 0
                if conn.paused and not conn.closed:
                    conn.paused = False
                    conn.transport.resume_reading()
                return data
            if conn.error is not None:
                raise conn.error
            if conn.complete:
                return b""
            if conn.closed:
                if self._until_close:
                    return b""
                raise ProtocolError("the connection dropped before the response's end")
            await conn.wait()

    async def read_all(self, limit: int = 65536) -> bytes:
        data = b""
        while len(data) < limit:
            piece = await self.read()
            if not piece:
                break
            data += piece
        return data

    def close(self, *, drain: bool = False) -> None:
        """Give the connection back for the next request if the response was
        read to its end, else close it. ``drain``: the reader has all it needs
        (an answer's ``[DONE]``) though the body has not ended yet; the rest
        (a chunked body's last bytes, usually just behind) is let through and
        the connection kept if it ends within DRAIN_SECONDS."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.closed or conn.error is not None or not conn.keep_alive:
            conn.close()
        elif conn.complete:
            self._client._put_idle(self._key, conn)
        elif drain and not self._until_close:
            key, client = self._key, self._client
            conn.drain(lambda: client._put_idle(key, conn), self.DRAIN_SECONDS)
        else:
            conn.close()


def _proxies() -> dict[str, str]:
    return urllib.request.getproxies_environment()


class StreamClient:
    """Keep-alive connections per (scheme, host, port) for one event loop."""

    def __init__(self, *, max_idle_per_host: int = 256, idle_seconds: float = 30.0, user_agent: str = "arena"):
        self.max_idle_per_host = max_idle_per_host
        self.idle_seconds = idle_seconds
        self.user_agent = user_agent
        self._idle: dict[tuple, list[_Connection]] = {}
        self._targets: dict[str, tuple] = {}
        self._ssl: ssl.SSLContext | None = None
        self._proxies = _proxies()
        self._httpx = None

    def uses_proxy(self, url: str) -> bool:
        if not self._proxies:
            return False
        parts = urlsplit(url)
        if not (self._proxies.get(parts.scheme) or self._proxies.get("all")):
            return False
        return not urllib.request.proxy_bypass_environment(parts.hostname or "", self._proxies)

    def httpx_client(self):
        """An ``httpx.AsyncClient`` for the URLs ``uses_proxy`` sends to httpx (built once)."""
        if self._httpx is None:
            import httpx

            # No pool cap: the per-model cap is max_concurrency, checked at the claim.
            self._httpx = httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=100))
        return self._httpx

    def _target(self, url: str) -> tuple:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in ("http", "https") or not parts.hostname:
                raise ConnectError(f"not an http(s) URL: {url}")
            try:
                port = parts.port or (443 if scheme == "https" else 80)
            except ValueError as exc:
                raise ConnectError(f"bad port in {url}") from exc
            host = parts.hostname
            default = port == (443 if scheme == "https" else 80)
            host_header = (f"[{host}]" if ":" in host else host) + ("" if default else f":{port}")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            target = ((scheme, host, port), host_header, path)
            if len(self._targets) < 1024:
                self._targets[url] = target
        return target

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi comes with httpx
                self._ssl = ssl.create_default_context()
        return self._ssl

    def _take_idle(self, key: tuple) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        loop_time = idle[-1].loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and loop_time - conn.idle_since < self.idle_seconds:
                return conn
            conn.close()
        return None

    def _put_idle(self, key: tuple, conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        conn.idle_since = conn.loop.time()
        # Drop the closed and the expired from the old end first.
        while idle and (idle[0].closed or conn.idle_since - idle[0].idle_since >= self.idle_seconds):
            idle.pop(0).close()
        if len(idle) >= self.max_idle_per_host:
            idle.pop(0).close()
        idle.append(conn)

    async def _connect(self, key: tuple, timeout: float) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop), host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            raise StreamTimeout(f"no connection within {timeout:g} s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect ({exc})") from exc
        return conn

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Response:
        """Send the request and wait for the response's headers."""
        key, host_header, path = self._target(url)
        lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {self.user_agent}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ProtocolError(f"header {name} holds a line break")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in range(2):
            conn = self._take_idle(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, connect_timeout)
            conn.new_response()
            conn.start_timer(read_timeout)
            try:
                conn.transport.write(request)
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    if conn.closed:
                        raise ProtocolError("the server closed the connection without a response")
                    await conn.wait()
            except ProtocolError:
                conn.close()
                if reused and attempt == 0 and not conn.received:
                    continue  # a kept connection the server had closed: once more on a new one
                raise
            except BaseException:
                conn.close()
                raise
            return Response(self, key, conn)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
