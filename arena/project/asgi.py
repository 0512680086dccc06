"""The ASGI entry point (the Procfile's web line): Django's request handling
with the request's sync work in one hop to a fixed pool of threads.

Django's own ASGIHandler builds an async middleware chain. Every middleware
here is sync underneath (sessions, CSRF, auth, messages; ApiErrorMiddleware
is sync only), and so are the views (DRF has no async views): Django runs
each ``process_request``/``process_response`` and the view through a
``sync_to_async`` hop of its own, and it wraps every request in a
``ThreadSensitiveContext``, which makes a new single-thread executor (a new
OS thread) per request, then fires ``request_started``/``request_finished``
through further hops. On the vote path that machinery cost more CPU than the
views (issue #14: 20 ms per open + vote against 11.5 ms for the same views
called directly).

This handler keeps on the loop only what belongs there: reading the body and
sending the response, including an async iterator's stream
(arena.live.stream_turn), which the loop drives for as long as the answers
take, so a waiting stream costs a coroutine, not a thread. Everything else
(the request signals, building the request, the sync middleware chain and
the view, closing a plain response) runs as Django runs it under WSGI, in
one call on one of ``WEB_THREADS`` long-lived threads.

Database connections are given back (to the pool) as soon as the response
is built, before it is sent: a stream holds no connection for its minutes
on the wire (its later database steps run on arena.live's own small thread
pool).
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import FileResponse
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.project.settings")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def request_threads() -> ThreadPoolExecutor:
    """The process's request threads (WEB_THREADS of them), made on first use."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=settings.WEB_THREADS, thread_name_prefix="request")
    return _pool


def release_connections() -> None:
    """Give this thread's database connections back (to the pool) now."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


_recycle = random.Random()  # noqa: S311 - spreads load, guards nothing


class ArenaASGIHandler(ASGIHandler):
    """WEB_KEEPALIVE_REQUESTS = N: a keep-alive
    connection is closed after a response with probability 1/N, so after N
    requests on average (nginx's keepalive_requests, without per-connection
    state). The web processes share one listening socket, and whichever
    accepts first takes a whole burst of new connections: 50 clients that
    connect together can all land on one process and hold it at 100% of a
    core while the other idles. A connection that is closed now and then is
    made again, and most often accepted by the process with time to spare."""

    def load_middleware(self, is_async: bool = False) -> None:
        # The sync chain, as under WSGI: no per-middleware thread hops.
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan: not supported, as Django's own handler
            return await super().__call__(scope, receive, send)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(request_threads(), self._respond, scope, body_file)
            if response.streaming:
                await self._stream(response, receive, send)
                await loop.run_in_executor(request_threads(), response.close)  # request_finished
            else:
                keepalive_requests = settings.WEB_KEEPALIVE_REQUESTS
                if keepalive_requests and _recycle.random() * keepalive_requests < 1:
                    response.headers["Connection"] = "close"  # uvicorn closes it after this response
                await self.send_response(response, send)
        finally:
            body_file.close()

    async def read_body(self, receive):
        """The body in memory when it came in one message within
        FILE_UPLOAD_MAX_MEMORY_SIZE (every API request), else Django's
        spooled file: making a SpooledTemporaryFile per request cost more
        than reading a vote's few bytes."""
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        body = message.get("body", b"")
        if not message.get("more_body", False) and len(body) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            return io.BytesIO(body)
        spooled = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")  # noqa: SIM115 - closed by __call__
        spooled.write(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                spooled.close()
                raise RequestAborted()
            spooled.write(message.get("body", b""))
        spooled.seek(0)
        return spooled

    def _respond(self, scope, body_file):
        """On a request thread: what Django's WSGI handler does for a request."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        try:
            if request is not None:
                response = self.get_response(request)
                response._handler_class = self.__class__
                if isinstance(response, FileResponse):
                    response.block_size = self.chunk_size
        finally:
            # Given back now, not after a stream's minutes.
            release_connections()
        if not response.streaming:
            # The body is built: its closers and request_finished run here,
            # on this thread, rather than through one more hop after sending.
            response.close()
        return response

    async def _stream(self, response, receive, send):
        """Send a streaming response while watching for the client leaving:
        a disconnect cancels the stream (its iterator sees CancelledError),
        as in Django's own handler."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        await asyncio.wait((sending, listening), return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, sending):
            if not task.done():
                task.cancel()
            try:
                await task
            except (asyncio.CancelledError, RequestAborted):
                pass


def get_asgi_application() -> ArenaASGIHandler:
    """django.core.asgi.get_asgi_application, with this handler."""
    import django

    django.setup(set_prefix=False)
    return ArenaASGIHandler()


application = get_asgi_application()
