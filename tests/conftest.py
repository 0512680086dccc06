from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.services import PHONE, ROOT, SHOTS, WorkerProcess, purge_broker, require_chromium, worker_env

DEMO_DIR = ROOT / "arena" / "demo"


@pytest.fixture(autouse=True)
def _isolated_cache(settings, tmp_path):
    """Each test gets its own cache (debounce flags, locks, rate limits)."""
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache"),
            }
        }
    from django.core.cache import cache

    try:
        cache.clear()
    except Exception:  # noqa: BLE001 - Redis down is some tests' subject
        pass


@pytest.fixture(autouse=True)
def _fresh_open_caches():
    """The open path's per-process caches (answer index, snapshot rows) start
    empty: on SQLite a rolled-back test's ids come back in the next test."""
    from arena import services
    from votes.services import forget_debounce

    services.reset_caches()
    forget_debounce()
    yield
    services.reset_caches()


@pytest.fixture
def demo_models(db):
    """The committed demo arena loaded into the test database."""
    from django.core.management import call_command

    call_command("load_demo", verbosity=0)
    from arena.models import ArenaModel

    return list(ArenaModel.objects.order_by("name"))


@pytest.fixture
def demo_names() -> list[str]:
    return [m["name"] for m in json.loads((DEMO_DIR / "models.json").read_text())]


@pytest.fixture
def shared_cache(settings):
    """The cache the worker processes use too, as web and worker share it in
    production: the debounce flag a vote sets must be the one the worker's
    recompute clears (Redis in CI; on a laptop the file cache in ARENA_VAR_DIR
    that every process started from this environment reads)."""
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(settings.VAR_DIR / "cache"),
            }
        }
    from django.core.cache import cache

    cache.clear()
    return cache


@pytest.fixture
def start_worker(transactional_db, shared_cache, tmp_path):
    """Start real Celery worker processes against the test database; all are
    stopped at the end of the test. ``start_worker(env={...}, args=[...])``."""
    purge_broker()
    workers: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None, args: list[str] | tuple[str, ...] = ()) -> WorkerProcess:
        worker = WorkerProcess(worker_env(env), tmp_path / f"worker-{len(workers)}.log", args)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker_process(start_worker):
    """A real Celery worker process on the configured broker (Redis in CI,
    the filesystem broker on a laptop), against the test database."""
    return start_worker()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return require_chromium()


@pytest.fixture
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()
        # Playwright's sync API runs the test in its own greenlet context, where
        # Django opens separate connections; close them here or PostgreSQL
        # refuses to drop the test database ("accessed by other users").
        from django.db import connections

        connections.close_all()


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture
def new_context(browser):
    """``new_context(**options)``: a browser context (closed after the test)
    with a 15 s default timeout for actions."""
    contexts = []

    def make(timeout_ms: int = 15_000, **options):
        context = browser.new_context(**options)
        context.set_default_timeout(timeout_ms)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def desktop(new_context):
    return new_context(viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(new_context):
    return new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


@pytest.fixture
def artifacts_dir() -> Path:
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own on a free port (restart it, freeze it:
    the machine's shared Redis is never touched); stopped after the test."""
    from tests.services import RedisServer, free_port, redis_server_binary, unavailable

    binary = redis_server_binary()
    if binary is None:
        unavailable("redis-server binary not installed (apt-get install redis-server)")
    server = RedisServer(binary, free_port(), tmp_path / "redis").start()
    yield server
    server.stop(kill=True)


@pytest.fixture(autouse=True)
def _closed_redis_breakers():
    """Each test starts with every Redis circuit breaker closed
    (arena/redis_guard.py keeps per-process state)."""
    from arena import redis_guard

    redis_guard.reset()
    yield
    redis_guard.reset()


@pytest.fixture
def asgi_server(settings, transactional_db):
    """Not pytest-django's live_server (a WSGI server, which would buffer a
    stream whole): uvicorn, as in production. The test settings run with DEBUG off and no
    collectstatic, so whitenoise finds app static files itself, as in DEBUG."""
    settings.WHITENOISE_USE_FINDERS = True
    from arena import live
    from tests.asgi_server import AsgiServer

    server = AsgiServer().start()
    yield server
    server.stop()
    live.reset_db_pool()
