"""Real external services for the integration tests, and the rule that decides
whether a missing one skips (a laptop with Python alone) or fails (CI).

CI sets ARENA_REQUIRE_SERVICES=1: then every "skip because X is missing"
becomes a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("ARENA_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")
CHROMIUM = os.environ.get("ARENA_CHROMIUM", "/usr/bin/chromium")
# Committed screenshots are refreshed on request (ARENA_SCREENSHOTS=docs);
# ordinary runs write to test-artifacts/ so the work tree stays clean.
SHOTS = ROOT / ("docs/screenshots" if os.environ.get("ARENA_SCREENSHOTS") == "docs" else "test-artifacts/screenshots")
PHONE = {"width": 390, "height": 844}


def unavailable(reason: str) -> None:
    """Skip with a one-line reason, or fail when CI requires every service."""
    if REQUIRE:
        pytest.fail(f"required service unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or None


def require_redis() -> str:
    url = redis_url()
    if not url:
        unavailable("Redis not configured (set REDIS_URL)")
    parsed = urlparse(url)
    if not port_open(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        unavailable(f"Redis unreachable at {url}")
    return url


def require_postgres() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        unavailable("PostgreSQL not configured (set DATABASE_URL=postgres://…)")


def require_chromium() -> str:
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a child process that must see the test database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        user = db.get("USER") or ""
        auth = f"{user}:{db.get('PASSWORD')}@" if db.get("PASSWORD") else (f"{user}@" if user else "")
        env["DATABASE_URL"] = f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    env["RATINGS_DEBOUNCE_SECONDS"] = env.get("RATINGS_DEBOUNCE_SECONDS", "1")
    env.update(extra or {})
    return env


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def purge_broker() -> None:
    """Drop messages left by earlier tests so a new worker starts clean."""
    from arena.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)


class ChildProcess:
    """Any other server a test starts (runserver, celery beat, redis-server),
    logged to a file and stopped by the test that started it."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.cmd = cmd
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, *, port: int | None = None, ready_text: bytes | None = None, timeout: float = 30.0):
        """Start and wait until ``port`` accepts connections or ``ready_text`` is logged."""
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[0]} exited early:\n{self.output()[-3000:]}")
            if port is not None and port_open("127.0.0.1", port):
                return self
            if ready_text is not None and ready_text in self.log_path.read_bytes():
                return self
            if port is None and ready_text is None:
                return self
            time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"{' '.join(self.cmd)} not ready in {timeout:.0f} s:\n{self.output()[-3000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class WorkerProcess(ChildProcess):
    """A real `celery worker` child process, stopped (or killed) by the test."""

    def __init__(self, env: dict[str, str], log_path: Path, args: list[str] | tuple[str, ...] = ()):
        super().__init__(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "arena",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *args,
            ],
            log_path,
            env,
        )

    def start(self) -> WorkerProcess:  # type: ignore[override]
        super().start(ready_text=b"ready.")
        return self


# --- fault injection (tests/test_faults_redis.py, bench/bench_faults.py) -----


class RedisServer(ChildProcess):
    """A throwaway redis-server on a free port, in its own directory, saving
    nothing: the machine's shared Redis is never stopped, frozen or flushed.
    ``restart()`` is `redis-cli shutdown nosave` and a new server on the same
    port; ``freeze()``/``thaw()`` are SIGSTOP/SIGCONT."""

    def __init__(self, binary: str, port: int, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            workdir / "redis.log",
        )
        self.port = port

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):  # type: ignore[override]
        return super().start(port=self.port, timeout=15)

    def restart(self, down_seconds: float = 0.5) -> None:
        """Stop it the way an operator's `shutdown nosave` does (everything in
        it is lost), then start a fresh server on the same port."""
        import signal

        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # redis-server's SIGTERM = SHUTDOWN (and --save "": nosave)
            self.proc.wait(timeout=15)
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()
        time.sleep(down_seconds)
        self.start()

    def freeze(self) -> None:
        import signal

        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        import signal

        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.thaw()  # a stopped process would ignore SIGTERM until continued
        super().stop(kill=kill)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), e.g. the worker run_arena started."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class HttpVoter:
    """One browser-like voter over real HTTP: a session cookie, the CSRF token,
    and an ``Idempotency-Key`` on every vote. Records every answer, so a test
    can check each 201 against the database and recover the rest by key."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.http.get("/arena/").raise_for_status()
        self.http.headers["X-CSRFToken"] = self.http.cookies["csrftoken"]
        self.sent: list[dict] = []  # {"battle", "winner", "key", "status", "seconds"}

    def open_battle(self) -> str:
        response = self.http.post("/api/v1/battles/", json={})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def vote(self, battle_id: str, winner: str = "a", key: str | None = None) -> dict:
        import uuid

        key = key or str(uuid.uuid4())
        started = time.perf_counter()
        try:
            response = self.http.post(
                f"/api/v1/battles/{battle_id}/vote/", json={"winner": winner}, headers={"Idempotency-Key": key}
            )
            status = response.status_code
        except Exception as exc:  # noqa: BLE001 - a timeout or reset is an answer too: "no answer"
            status = f"{type(exc).__name__}"
        record = {
            "battle": battle_id,
            "winner": winner,
            "key": key,
            "status": status,
            "seconds": time.perf_counter() - started,
        }
        self.sent.append(record)
        return record

    def recover(self) -> None:
        """Retry every vote not answered 201 with its own Idempotency-Key, as a
        client does: a stored vote must come back as its first answer (201)."""
        for record in self.sent:
            if record["status"] == 201:
                continue
            try:
                response = self.http.post(
                    f"/api/v1/battles/{record['battle']}/vote/",
                    json={"winner": record["winner"]},
                    headers={"Idempotency-Key": record["key"]},
                )
                record["recovered"] = response.status_code
            except Exception as exc:  # noqa: BLE001
                record["recovered"] = type(exc).__name__


def vote_ledger(sent: list[dict], stored_battles: dict[str, int]) -> dict:
    """Compare what voters were told with what the database holds.

    ``stored_battles``: battle id → number of vote rows for it. Returns the
    counts the fault suite asserts and the benchmark prints: sent, 201s,
    stored, lost (answered 201, not stored), doubled (more than one row for
    a battle), stored-but-failed (stored, but neither answered 201 nor
    recovered as 201 by its Idempotency-Key).
    """
    ok = {r["battle"] for r in sent if r["status"] == 201}
    recovered = {r["battle"] for r in sent if r["status"] != 201 and r.get("recovered") == 201}
    stored = {b for b, n in stored_battles.items() if n > 0}
    return {
        "sent": len(sent),
        "201": len(ok),
        "stored": sum(stored_battles.values()),
        "lost": len(ok - stored),
        "doubled": sum(n - 1 for n in stored_battles.values() if n > 1),
        "stored_but_failed": len(stored - ok - recovered),
        "recovered": len(recovered & stored),
    }
