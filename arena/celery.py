"""The Celery application: configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
# The recompute's numpy work is small matrices: one BLAS thread per worker
# halves its CPU at the same wall time and leaves the cores to PostgreSQL.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

app = Celery("arena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Each worker writes a heartbeat that /healthz reads (arena/health.py).
from arena.health import connect_worker_signals  # noqa: E402

connect_worker_signals()
