"""A TCP proxy the fault tests and benchmarks own, placed between Django and
a real server (PostgreSQL, Redis) to stage outages without touching the
server itself.

    proxy = TcpProxy("127.0.0.1", 5432).start()   # listens on proxy.port
    proxy.cut()      # close every open connection and refuse new ones
    proxy.hold()     # accept and keep connections, forward nothing (a frozen peer)
    proxy.resume()   # back to forwarding; new connections go through
    proxy.stop()

Threads, not asyncio: it must keep working while the test's own thread
blocks in a database call.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class TcpProxy:
    FORWARD, CUT, HOLD = "forward", "cut", "hold"

    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = self.FORWARD
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((listen_host, 0))
        self._server.listen(256)
        self.host, self.port = self._server.getsockname()
        self._stopped = threading.Event()

    # -- control -------------------------------------------------------------

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True).start()
        return self

    def cut(self) -> None:
        """Every open connection is closed (the client sees a reset or EOF)
        and new ones are refused until ``resume()``."""
        with self._lock:
            self.mode = self.CUT
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            _close(client)
            _close(upstream)

    def hold(self) -> None:
        """Connections stay open but nothing passes either way: calls block
        until the client's own timeout, as against a frozen server."""
        with self._lock:
            self.mode = self.HOLD

    def resume(self) -> None:
        with self._lock:
            self.mode = self.FORWARD

    def stop(self) -> None:
        self._stopped.set()
        _close(self._server)
        self.cut()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # -- plumbing ------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                mode = self.mode
            if mode == self.CUT:
                _close(client)
                continue
            threading.Thread(target=self._serve, args=(client,), name="tcp-proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self.mode == self.CUT:
                _close(client)
                _close(upstream)
                return
            self._pairs.append((client, upstream))
        peers = {client: upstream, upstream: client}
        try:
            while not self._stopped.is_set():
                try:
                    readable, _, _ = select.select(list(peers), [], [], 0.1)
                except (OSError, ValueError):
                    return
                with self._lock:
                    mode = self.mode
                if mode == self.CUT:
                    return
                if mode == self.HOLD:
                    time.sleep(0.05)  # bytes wait in the kernel buffers, unread
                    continue
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    try:
                        peers[sock].sendall(data)
                    except OSError:
                        return
        finally:
            with self._lock:
                self._pairs = [p for p in self._pairs if p[0] is not client]
            _close(client)
            _close(upstream)


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
