"""Compatibility: ``arena.asgi:application`` (Procfile, deploy/) keeps working; see arena/project/asgi.py."""

from arena.project.asgi import application

__all__ = ("application",)
