"""Compatibility: ``arena.asgi:application`` (Procfile, deploy/) keeps working; see arena/project/asgi.py.

The web process imports this once at start-up: the collector is tuned for
serving then, once the application exists (arena/gc_tuning.py).
"""

from arena.gc_tuning import tune_for_serving
from arena.project.asgi import application

tune_for_serving()

__all__ = ("application",)
