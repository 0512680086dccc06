"""Settings: DEBUG is off unless set, production refuses the development key,
the old module paths keep working, and settings are read in settings only."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.services import ROOT

SHOW = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DEBUG, settings.ROOT_URLCONF, settings.SECRET_KEY == 'dev-only-insecure-secret-key-change-me')"
)
REAL_KEY = "a-real-secret-key-for-this-test-0123456789abcdefghijklmnop"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    base["DJANGO_SETTINGS_MODULE"] = "arena.settings"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_debug_is_off_unless_set():
    result = run_python(SHOW, SECRET_KEY=REAL_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "arena.project.urls", "False"]


def test_without_debug_and_a_real_secret_key_the_project_refuses_to_start():
    for env in ({}, {"DEBUG": "false"}, {"DEBUG": "false", "SECRET_KEY": "dev-only-insecure-secret-key-change-me"}):
        result = run_python(SHOW, **env)
        assert result.returncode != 0, (env, result.stdout)
        assert "SECRET_KEY must be set to a real secret when DEBUG is off" in result.stderr, (env, result.stderr)


def test_debug_true_runs_with_the_development_key():
    result = run_python(SHOW, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "arena.project.urls", "True"]


def test_the_old_module_paths_still_work():
    """DJANGO_SETTINGS_MODULE=arena.settings, `celery -A arena`, arena.asgi and
    arena.wsgi (Procfile, deploy/) are the same objects as arena.project's."""
    code = (
        "import django; django.setup(); from django.conf import settings\n"
        "from celery.app.utils import find_app\n"
        "import arena.asgi, arena.project.asgi, arena.wsgi, arena.project.wsgi, arena.project.celery\n"
        "assert find_app('arena') is arena.project.celery.app, find_app('arena')\n"
        "assert arena.asgi.application is arena.project.asgi.application\n"
        "assert arena.wsgi.application is arena.project.wsgi.application\n"
        "from celery import current_app; assert current_app.main == 'arena'\n"
        "print(settings.SETTINGS_MODULE, settings.WSGI_APPLICATION)\n"
    )
    result = run_python(code, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["arena.settings", "arena.project.wsgi.application"]


def test_settings_are_read_in_settings_only():
    """No getattr(settings, NAME, default) outside the settings module: every
    setting has its one default there."""
    found = []
    for app in ("arena", "votes", "ratings"):
        for path in (ROOT / app).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"getattr\(\s*(django_)?settings\s*,", line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
