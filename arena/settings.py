"""Compatibility: ``DJANGO_SETTINGS_MODULE=arena.settings`` keeps working;
the settings live in arena/project/settings.py."""

from arena.project.settings import *  # noqa: F403 - every setting, re-exported under the old name
