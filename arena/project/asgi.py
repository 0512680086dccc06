"""The ASGI entry point (the Procfile's web line): Django's ASGI handler with
the request's sync work in one thread hop.

Django's own ASGIHandler builds an async middleware chain. Every middleware
here is sync underneath (sessions, CSRF, auth, messages; ApiErrorMiddleware
is sync only), and so are the views (DRF has no async views): Django runs
each ``process_request``/``process_response`` and the view through a
``sync_to_async`` hop of its own, about twenty trips between the event loop
and the request's thread per request, each waiting for a turn of the loop.
That measured as most of the web process's CPU on the vote path, and with
hundreds of live streams on the loop every turn takes milliseconds (issue
#14).

This handler runs the middleware chain and the view as Django does under
WSGI, in one call on the request's thread (the one Django's
``ThreadSensitiveContext`` gives every request). What stays on the loop is
what belongs there: reading the body and sending the response, including an
async iterator's stream (arena.live.stream_turn), which the loop drives for
as long as the answers take; a waiting stream costs a coroutine, not a
thread.

Database connections are given back (to the pool) as soon as the response
is built, before it is sent: a stream holds no connection for its minutes
on the wire (its later database steps run on arena.live's own small thread
pool).
"""

from __future__ import annotations

import os

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.project.settings")


class ArenaASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # The sync chain, as under WSGI: no per-middleware thread hops.
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self._respond, thread_sensitive=True)(request)

    def _respond(self, request):
        response = self.get_response(request)
        # Give the connections back now, not after a stream's minutes. Closed
        # even within CONN_MAX_AGE: every request runs on a thread of its own,
        # so a kept connection would never be used again.
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close()
        return response


def get_asgi_application() -> ArenaASGIHandler:
    """django.core.asgi.get_asgi_application, with this handler."""
    import django

    django.setup(set_prefix=False)
    return ArenaASGIHandler()


application = get_asgi_application()
