"""Start web + Celery worker + beat together; Ctrl-C stops all three.

Used by `make run`. On the embedded default (no REDIS_URL) Celery uses the
filesystem broker in var/broker: a real worker process, no server needed.
A worker or beat that exits is restarted (supervision, docs/RATINGS.md#faults).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

ROOT = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = "Run the arena: web server, Celery worker and beat, until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))

    def ensure_admin(self) -> tuple[str, str]:
        """An admin login for the operator; the password lives in var/admin-password."""
        user_model = get_user_model()
        pw_file = settings.VAR_DIR / "admin-password"
        if user_model.objects.filter(username="admin").exists() and pw_file.exists():
            return "admin", pw_file.read_text().strip()
        password = secrets.token_urlsafe(12)
        user, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        pw_file.write_text(password + "\n")
        pw_file.chmod(0o600)
        return "admin", password

    def handle(self, port: int, host: str, **opts):
        username, password = self.ensure_admin()
        py = sys.executable
        # Web, worker and beat run in this command's mode: DEBUG is off unless
        # set, and `make run` sets it for a development arena.
        env = {**os.environ, "DEBUG": os.environ.get("DEBUG") or ("true" if settings.DEBUG else "false")}
        procs = {
            # The production server (ASGI: a live stream is a coroutine, not a
            # thread), one process; whitenoise serves /static/.
            "web": [
                py,
                "-m",
                "uvicorn",
                "arena.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",
            ],
            "worker": [
                py,
                "-m",
                "celery",
                "-A",
                "arena",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [
                py,
                "-m",
                "celery",
                "-A",
                "arena",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        if not settings.DEBUG:  # whitenoise serves app static files from STATIC_ROOT only
            subprocess.run([py, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        running: dict[str, subprocess.Popen] = {}
        for name, cmd in procs.items():
            running[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        url = f"http://{host}:{port}/"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nArena is starting at {url}arena/  (leaderboard {url}leaderboard/, API {url}api/docs/)\n"
                f"Admin: {url}admin/  login {username} / {password}\n"
                "Ctrl-C stops web, worker and beat.\n"
            )
        )
        stop = {"now": False}

        def on_signal(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        # Supervision: a worker or beat that exits (a crash, an OOM kill, a
        # broker bug) is started again, after a pause that doubles while it
        # keeps dying young (1 s up to 30 s), so the leaderboard heals without
        # a person. The web server exiting stops everything: that is the
        # operator's window onto the arena (e.g. the port is taken).
        started = {name: time.monotonic() for name in running}
        backoff = {name: 0.5 for name in running}
        restart_at: dict[str, float] = {}
        try:
            while not stop["now"]:
                now = time.monotonic()
                for name, p in running.items():
                    if name in restart_at:
                        if now >= restart_at[name]:
                            del restart_at[name]
                            running[name] = subprocess.Popen(procs[name], cwd=ROOT, env=env, start_new_session=True)
                            started[name] = now
                            self.stderr.write(f"{name} restarted")
                        continue
                    if p.poll() is None:
                        continue
                    if name == "web":
                        self.stderr.write(f"web exited with status {p.returncode}; stopping the rest")
                        stop["now"] = True
                        break
                    lived = now - started[name]
                    backoff[name] = 1.0 if lived > 60 else min(30.0, backoff[name] * 2)
                    restart_at[name] = now + backoff[name]
                    self.stderr.write(f"{name} exited with status {p.returncode}; restarting in {backoff[name]:.0f} s")
                time.sleep(0.5)
        finally:
            for p in running.values():
                if p.poll() is None:
                    # The leader only: Celery's main process stops its own pool
                    # (a warm shutdown); the whole group is killed only on timeout.
                    p.terminate()
            deadline = time.time() + 15
            for p in running.values():
                try:
                    p.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
            self.stdout.write("stopped")
