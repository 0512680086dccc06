"""The Celery application: configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.project.settings")
# The recompute's numpy work is small matrices: one BLAS thread per worker
# halves its CPU at the same wall time and leaves the cores to PostgreSQL.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = Celery("arena")
# The default app of every thread, not only the importing one: the apps reach
# it as ``celery.current_app`` (they never import the wiring), and a web
# request runs on a thread other than the one that loaded the settings.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Each worker writes a heartbeat that /healthz reads (arena/project/health.py).
from arena.project.health import connect_worker_signals  # noqa: E402 - needs the app above

connect_worker_signals()
