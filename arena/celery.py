"""Compatibility: ``celery -A arena`` finds the app here (arena/project/celery.py)."""

from arena.project.celery import app

__all__ = ("app",)
