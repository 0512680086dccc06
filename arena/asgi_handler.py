"""Django's ASGI handler with the request's sync work in one thread hop.

Django's own ASGIHandler builds an async middleware chain. Every
middleware here is sync underneath (sessions, CSRF, auth, messages: Django
runs each ``process_request`` and ``process_response`` through
``sync_to_async``; ApiErrorMiddleware is sync only), and so are the views
(DRF has no async views). A request then crossed between the event loop
and its thread about twenty times, and each crossing waits for a turn of
the loop. With hundreds of live streams on that loop a turn takes
milliseconds, so starting a stream, or reading the leaderboard, waited
that long twenty times over.

This handler runs the middleware chain and the view as Django does under
WSGI, in one call on the request's thread (the same thread Django's
``ThreadSensitiveContext`` gives every request). What stays on the loop is
what belongs there: reading the body, and sending the response, including
an async iterator's stream (arena.live.stream_turn), which is driven by
the loop for as long as the answers take.

Database connections are closed (or given back to the pool, when it is on)
as soon as the response is built, before it is sent: a stream holds no
connection for its minutes on the wire (its later database steps run on
arena.live's own small thread pool).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections


class ArenaASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # The sync chain, as under WSGI: no per-middleware thread hops.
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self._respond, thread_sensitive=True)(request)

    def _respond(self, request):
        response = self.get_response(request)
        # Give the connections back now (to the pool when it is on), not
        # after a stream's minutes. Closed even within CONN_MAX_AGE: every
        # request runs on a thread of its own, so a kept connection would
        # never be used again, only left open until the thread is collected.
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()
        return response


def get_asgi_application() -> ArenaASGIHandler:
    """django.core.asgi.get_asgi_application, with this handler."""
    import django

    django.setup(set_prefix=False)
    return ArenaASGIHandler()
