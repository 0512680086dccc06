"""The battle domain (model registry, answer sets, sampling, battles, the
voting page and battle API, live battles); the project wiring lives in
``arena.project`` (settings, urls, Celery app, asgi/wsgi, /healthz, /metrics)."""
