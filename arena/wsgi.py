"""Compatibility: ``arena.wsgi:application`` keeps working; see arena/project/wsgi.py."""

from arena.project.wsgi import application

__all__ = ("application",)
