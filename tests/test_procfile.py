"""The production recipe, run as written: the ``Procfile``'s ``release``,
``web``, ``worker`` and ``beat`` lines, each started by a shell exactly as a
Procfile runner (honcho, foreman, a PaaS) would, against PostgreSQL and Redis.

One live battle is opened and streamed through the web (answers from a local
OpenAI-compatible server), voted on, and the leaderboard moves; ``/healthz``
is 200 while the worker runs and 503 once it has been stopped with SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fake_openai import FakeOpenAI
from tests.services import ROOT, free_port, purge_broker, require_postgres, require_redis, wait_for, worker_env

PROCFILE = ROOT / "Procfile"


def procfile() -> dict[str, str]:
    """{process type: command} from the Procfile (``name: command`` lines)."""
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line.strip())
        assert match, f"not a Procfile line: {line!r}"
        entries[match[1]] = match[2]
    return entries


def test_procfile_has_the_four_process_types():
    entries = procfile()
    assert set(entries) == {"web", "worker", "beat", "release"}
    assert "migrate" in entries["release"] and "collectstatic" in entries["release"]


class ProcfileProcess:
    """One Procfile line run by /bin/sh in its own process group (a runner
    signals the group, as systemd does), logged to a file."""

    def __init__(self, name: str, command: str, env: dict[str, str], log_dir: Path):
        self.name, self.command = name, command
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def provider():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def procfile_env(transactional_db, shared_cache, tmp_path):
    """The environment a deployment gives the Procfile's processes: the test
    database, this run's Redis, the virtualenv's commands first on PATH."""
    require_postgres()
    require_redis()
    purge_broker()
    venv_bin = str(Path(sys.executable).parent)
    return worker_env({
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "1",
        "ARENA_VAR_DIR": str(tmp_path / "var"),
        "ARENA_WORKER_HEARTBEAT_SECONDS": "1",
        "RATINGS_DEBOUNCE_SECONDS": "1",
        "RATINGS_MIN_VOTES": "1",
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip


def test_the_procfile_runs_a_live_battle_to_the_leaderboard_and_healthz_sees_the_worker_stop(
    procfile_env, provider, tmp_path
):
    from arena.models import ArenaModel

    for name in ("cobalt-7b", "amber-2b"):
        ArenaModel.objects.create(
            name=name, organization="Procfile Labs", provider_kind=ArenaModel.Provider.OPENAI,
            provider_settings={"base_url": provider.base_url, "model": f"{name}-served", "timeout": 10},
        )  # fmt: skip
        # No model or maker named in an answer: that is an identity leak, and its vote is not counted.
        provider.script(f"{name}-served", text="An answer in several words, streamed piece by piece", delay=0.01)
    entries = procfile()
    (tmp_path / "var").mkdir()

    release = subprocess.run(["/bin/sh", "-c", entries["release"]], cwd=ROOT, env=procfile_env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert release.returncode == 0, release.stdout[-2000:] + release.stderr[-2000:]

    running = {name: ProcfileProcess(name, entries[name], procfile_env, tmp_path) for name in ("web", "worker", "beat")}
    base = f"http://127.0.0.1:{procfile_env['PORT']}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:

            def healthz():
                try:
                    return client.get("/healthz")
                except httpx.TransportError:
                    return None

            up = wait_for(lambda: (r := healthz()) is not None and r.status_code == 200 and r, timeout=90)
            assert up, {n: p.output() for n, p in running.items()}
            checks = up.json()["checks"]
            assert up.json()["status"] == "ok"
            assert checks["worker"]["workers"] >= 1 and checks["broker"]["transport"] == "redis"

            before = client.get("/api/v1/leaderboard/").json()
            client.get("/arena/")  # the page sets the CSRF cookie a cookie session must echo
            csrf = {"X-CSRFToken": client.cookies["csrftoken"]}
            opened = client.post("/api/v1/battles/", json={"prompt": "Name a river."}, headers=csrf)
            assert opened.status_code == 201, opened.text
            battle = opened.json()
            assert battle["status"] == "pending"

            stream = client.post(f"/api/v1/battles/{battle['id']}/stream/", headers=csrf)
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            events = re.findall(r"^event: (\w+)", stream.text, flags=re.M)
            assert events[0] == "start" and events[-1] == "end" and events.count("side_done") == 2, stream.text
            assert '"status": "ready"' in stream.text.rsplit("event: end", 1)[1]

            voted = client.post(f"/api/v1/battles/{battle['id']}/vote/", json={"winner": "a"}, headers=csrf)
            assert voted.status_code == 201, voted.text
            winner = voted.json()["model_a"]

            seen = []

            def moved():
                response = client.get("/api/v1/leaderboard/")
                seen.append((response.status_code, response.text[:300]))
                return response.status_code == 200 and response.json()["votes"] > before["votes"] and response.json()

            board = wait_for(moved, timeout=60, interval=0.5)
            assert board, (seen[-3:], {n: p.output() for n, p in running.items()})
            assert board["models"][0]["model"] == winner
            assert {row["model"] for row in board["models"]} == {"cobalt-7b", "amber-2b"}

            running["worker"].signal(signal.SIGTERM)
            assert running["worker"].proc.wait(timeout=30) is not None
            down = wait_for(lambda: (r := healthz()) is not None and r.status_code == 503 and r, timeout=15)
            assert down, healthz().text
            body = down.json()
            assert body["status"] == "fail" and body["checks"]["worker"]["ok"] is False
            assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    finally:
        for process in running.values():
            process.stop()


def test_the_systemd_units_run_the_procfile_lines():
    """deploy/procfile-run is the units' only way in, so they can't drift from the Procfile."""
    entries = procfile()
    for name in ("web", "worker", "beat", "release"):
        unit = (ROOT / "deploy" / f"arena-{name}.service").read_text()
        assert f"ExecStart=/srv/arena/deploy/procfile-run {name}\n" in unit
        assert "EnvironmentFile=/etc/arena/env" in unit and "User=arena" in unit
        if name != "release":
            assert "Restart=always" in unit
    assert os.access(ROOT / "deploy" / "procfile-run", os.X_OK)
    shown = subprocess.run([str(ROOT / "deploy" / "procfile-run"), "nosuch"], capture_output=True, text=True)
    assert shown.returncode == 64 and "no 'nosuch' entry" in shown.stderr
    # The runner hands the line to a shell unchanged: $VARS expand there.
    echo = subprocess.run(["/bin/sh", "-c", entries["beat"].replace("celery", "echo", 1)], capture_output=True,
                          text=True, env={**os.environ, "ARENA_VAR_DIR": "/x"})  # fmt: skip
    assert "--schedule /x/celerybeat-schedule" in echo.stdout
