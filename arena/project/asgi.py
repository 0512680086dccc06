"""The ASGI entry point (the Procfile's web line).

Django's ASGI handler runs every sync middleware hook (process_request,
process_view, process_response of seven middleware) and then the sync view
each through a sync_to_async hop of its own: about fifteen trips from the
event loop to the request's thread and back per request, which measured
as most of the web process's CPU on the vote path (issue #14). Here a
request whose view is sync runs the whole sync middleware chain and the view
in ONE hop to that same thread, exactly as under WSGI; async views (the
live answer stream) keep Django's async path, so a waiting stream still
costs a coroutine, not a thread.
"""

from __future__ import annotations

import os

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import Resolver404, get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.project.settings")


class ArenaASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self._sync_handler = BaseHandler()
        self._sync_handler.load_middleware(is_async=False)

    def _view_is_sync(self, request) -> bool:
        try:
            match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
        except Resolver404:
            return False  # 404 pages and static files: Django's own path
        return not iscoroutinefunction(match.func)

    async def run_get_response(self, request):
        if not self._view_is_sync(request):
            return await super().run_get_response(request)
        # thread_sensitive: the request's own thread (ThreadSensitiveContext),
        # the one request_started/finished close its database connection in.
        response = await sync_to_async(self._sync_handler.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response


get_asgi_application()  # django.setup(), as Django's entry point does
application = ArenaASGIHandler()
