"""The project wiring: settings, urls, the Celery app, asgi/wsgi, and the
cross-cutting operator views (/healthz, /metrics) that read every app.

It may import every app and no app imports it (an import-linter contract,
``.importlinter``). Importing it loads the Celery app, as the Django-Celery
pattern does in the project package, so that ``shared_task`` and
``celery.current_app`` are this app in every process that loaded settings.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
