"""Votes under faults: what voters were told, what was stored, and how long the
leaderboard took to catch up, per fault (issue #12).

    .venv/bin/python bench/bench_faults.py [--database postgres://postgres@127.0.0.1:5432/arena_bench_faults]
        [--clients 6] [--before 3] [--fault 10] [--after 3]
        [--scenarios redis_restart,redis_freeze,worker_kill,pg_cut,pg_hold]

A production-like deployment, all real processes: the Procfile's web line
(gunicorn with uvicorn workers on arena.asgi, two workers, DEBUG=false), a
Celery worker (prefork, 2) and beat, a redis-server of its own on a free port
(the machine's Redis is never touched), and PostgreSQL (a scratch database,
recreated, dropped at the end) reached by web, worker and beat through
tests/tcp_proxy.py's TcpProxy, so its connections can be cut or held without
touching the server. The benchmark plays systemd's `Restart=always` for the
worker and beat (docs/RATINGS.md#faults): an exited one is started again
after 1 s.

Per scenario, --clients voters (each its own session) open a battle and vote
on it, with an Idempotency-Key, in a loop: --before seconds healthy, --fault
seconds with the fault, --after seconds healthy. Then every vote not answered
201 is retried with its key (as a client would), and the database (read
directly, not through the proxy) is compared with the answers:

  sent        votes posted
  201         answered 201 the first time
  stored      vote rows for those battles
  lost        answered 201 but not stored (target 0)
  doubled     more than one row for a battle (target 0)
  failed*     stored, but neither answered 201 nor recovered as 201 by its key (target 0)
  p95         vote latency over the whole run, and during the fault only (target < 300 ms while Redis is frozen)
  catch-up    seconds from the end of the fault until the newest snapshot counts every stored vote (target ≤ 60 s)

The scenarios run one after another on the same deployment; each waits for
the catch-up (at most 180 s) before the next starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_recompute  # noqa: E402 - the scratch-database helpers

from tests.services import (  # noqa: E402 - after the path is set
    ChildProcess,
    HttpVoter,
    RedisServer,
    free_port,
    redis_server_binary,
    vote_ledger,
)
from tests.tcp_proxy import TcpProxy  # noqa: E402

SCENARIOS = ("redis_restart", "redis_freeze", "worker_kill", "pg_cut", "pg_hold")
CATCH_UP_LIMIT = 180.0


def via_proxy(url: str, proxy: TcpProxy) -> str:
    p = urlparse(url)
    auth = p.netloc.rsplit("@", 1)[0] + "@" if "@" in p.netloc else ""
    return p._replace(netloc=f"{auth}127.0.0.1:{proxy.port}").geturl()


class Supervised:
    """A child process restarted 1 s after it exits (systemd's Restart=always)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path, ready_text: bytes):
        self.name, self.cmd, self.env, self.log_dir, self.ready_text = name, cmd, env, log_dir, ready_text
        self.restarts = 0
        self.child: ChildProcess | None = None
        self._stop = threading.Event()

    def start(self) -> Supervised:
        self._spawn()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _spawn(self) -> None:
        log = self.log_dir / f"{self.name}-{self.restarts}.log"
        self.child = ChildProcess(self.cmd, log, self.env)
        self.child.start(ready_text=self.ready_text, timeout=60)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            if self.child.proc.poll() is not None:
                print(f"    [{self.name} exited with {self.child.proc.returncode}; restarting in 1 s]", flush=True)
                time.sleep(1)
                self.restarts += 1
                try:
                    self._spawn()
                except RuntimeError as exc:
                    print(f"    [{self.name} failed to restart: {str(exc)[:200]}]", flush=True)

    @property
    def pid(self) -> int:
        return self.child.proc.pid

    def stop(self) -> None:
        self._stop.set()
        if self.child:
            self.child.stop()


def stored_battles(battle_ids: list[str]) -> dict[str, int]:
    from collections import Counter

    from votes.models import Vote

    counts: Counter = Counter()
    ids = list(battle_ids)
    for i in range(0, len(ids), 1000):
        counts.update(
            str(b) for b in Vote.objects.filter(battle_id__in=ids[i : i + 1000]).values_list("battle_id", flat=True)
        )
    return {b: counts.get(b, 0) for b in ids}


def caught_up() -> bool:
    from django.db import connection

    from ratings.models import Snapshot
    from votes.models import Vote

    try:
        snap = Snapshot.objects.order_by("-created_at", "-id").first()
        return snap is not None and snap.vote_count == Vote.objects.filter(excluded=False).count()
    except Exception:  # noqa: BLE001
        connection.close()
        return False


def p95(values: list[float]) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def run_load(base_url: str, clients: int, phases: dict, stop: threading.Event) -> list[HttpVoter]:
    """Voters voting until ``stop``; each record notes whether it started during the fault."""
    voters: list[HttpVoter] = []

    def one_voter() -> None:
        for _ in range(50):
            try:
                voter = HttpVoter(base_url, timeout=30)
                break
            except Exception:  # noqa: BLE001 - the web is not answering yet: try again
                time.sleep(0.2)
        else:
            return
        voters.append(voter)
        while not stop.is_set():
            try:
                response = voter.http.post("/api/v1/battles/", json={})
            except Exception:  # noqa: BLE001
                time.sleep(0.2)
                continue
            if response.status_code != 201:
                time.sleep(0.2)  # e.g. 503 while the database is away: no battle, no vote
                continue
            started = time.time()
            record = voter.vote(response.json()["id"], "a" if len(voter.sent) % 3 else "b", key=str(uuid.uuid4()))
            record["in_fault"] = phases.get("fault_start", 1e18) <= started < phases.get("fault_end", 1e18)

    threads = [threading.Thread(target=one_voter, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    phases["threads"] = threads
    return voters


def scenario(name: str, stack: dict, args) -> dict:
    redis: RedisServer = stack["redis"]
    proxy: TcpProxy = stack["proxy"]
    worker: Supervised = stack["worker"]
    phases: dict = {}
    stop = threading.Event()
    voters = run_load(stack["url"], args.clients, phases, stop)
    time.sleep(args.before)
    phases["fault_start"] = time.time()
    if name == "redis_restart":
        redis.restart(down_seconds=1.0)
        time.sleep(args.fault)
    elif name == "redis_freeze":
        redis.freeze()
        time.sleep(args.fault)
        redis.thaw()
    elif name == "worker_kill":
        os.kill(worker.pid, signal.SIGKILL)
        time.sleep(args.fault)
    elif name == "pg_cut":
        proxy.cut()
        time.sleep(args.fault)
        proxy.resume()
    elif name == "pg_hold":
        proxy.hold()
        time.sleep(args.fault)
        proxy.resume()
    phases["fault_end"] = time.time()
    time.sleep(args.after)
    stop.set()
    for t in phases["threads"]:
        t.join(timeout=60)
    sent = [r for v in voters for r in v.sent]
    for v in voters:
        v.recover()
    ledger = vote_ledger(sent, stored_battles([r["battle"] for r in sent]))
    deadline = phases["fault_end"] + CATCH_UP_LIMIT
    while time.time() < deadline and not caught_up():
        time.sleep(0.5)
    catch_up = time.time() - phases["fault_end"] if caught_up() else None
    latencies = [r["seconds"] * 1000 for r in sent]
    during = [r["seconds"] * 1000 for r in sent if r.get("in_fault")]
    healthy = [r["seconds"] * 1000 for r in sent if not r.get("in_fault")]
    statuses: dict = {}
    for r in sent:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "scenario": name,
        **ledger,
        "p95_ms": p95(latencies),
        "p95_fault_ms": p95(during),
        "p95_healthy_ms": p95(healthy),
        "votes_in_fault": len(during),
        "catch_up_s": catch_up,
        "statuses": statuses,
        "worker_restarts": worker.restarts,
    }


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_bench_faults")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--before", type=float, default=3.0)
    parser.add_argument("--fault", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=3.0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and logs")
    args = parser.parse_args()
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    binary = redis_server_binary()
    if binary is None:
        sys.exit("redis-server is not installed")

    work = Path(f"/tmp/bench-faults-{os.getpid()}")
    work.mkdir(parents=True)
    bench_recompute.recreate(args.database)
    pg = urlparse(args.database)
    proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432).start()
    redis = RedisServer(binary, free_port(), work / "redis").start()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": via_proxy(args.database, proxy),
        "REDIS_URL": redis.url(0),
        "REDIS_CACHE_URL": redis.url(1),
        "ARENA_VAR_DIR": str(work / "var"),
        "DEBUG": "false",
        "SECRET_KEY": "bench-faults-only-secret-key-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback (no TLS proxy in front): cookies must not be Secure.
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_SSL_REDIRECT": "false",
        # Limits on (every request counts them in Redis) but out of the load's reach.
        "ARENA_VOTE_RATE": "100000/m",
        "ARENA_VOTE_RATE_PER_ADDRESS": "100000/m",
        "ARENA_BATTLE_RATE": "100000/m",
        "ARENA_BATTLE_RATE_PER_ADDRESS": "100000/m",
        "ARENA_DAILY_VOTE_CAP": "0",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    direct = {**env, "DATABASE_URL": args.database}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=direct, check=True)
    subprocess.run([py, "manage.py", "load_demo", "-v", "0"], cwd=ROOT, env=direct, check=True)

    # This process reads the database directly (never through the proxy).
    os.environ.update(DATABASE_URL=args.database, ARENA_VAR_DIR=str(work / "var-bench"))
    for key in ("REDIS_URL", "REDIS_CACHE_URL"):
        os.environ.pop(key, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("DEBUG", "true")  # a development run: DEBUG is off unless set
    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)

    children: list = []
    try:
        web = ChildProcess(
            # The Procfile's web line: ASGI under gunicorn with uvicorn workers.
            [
                py,
                "-m",
                "gunicorn",
                "arena.asgi:application",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
            ],
            work / "web.log",
            env,
        )
        children.append(web)
        web.start(port=port, timeout=60)
        worker = Supervised(
            "worker",
            [
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
            env,
            work,
            b"ready.",
        ).start()
        children.append(worker)
        beat = Supervised(
            "beat",
            [
                py,
                "-m",
                "celery",
                "-A",
                "arena",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(work / "beat-schedule"),
            ],
            env,
            work,
            b"beat: Starting",
        ).start()
        children.append(beat)
        stack = {"redis": redis, "proxy": proxy, "worker": worker, "url": f"http://127.0.0.1:{port}"}
        print(
            f"# load average {os.getloadavg()[0]:.1f} (2 cores); {args.clients} clients, {args.before:g} s healthy, "
            f"{args.fault:g} s fault, {args.after:g} s healthy; logs in {work}",
            flush=True,
        )
        header = (
            f"{'scenario':<14} {'sent':>5} {'201':>5} {'stored':>6} {'lost':>4} {'doubled':>7} {'failed*':>7} "
            f"{'p95 ms':>7} {'healthy':>7} {'fault':>7} {'n fault':>7} {'catch-up s':>10}"
        )
        rows = []
        for name in names:
            result = scenario(name, stack, args)
            rows.append(result)
            print(
                f"  {name}: statuses {result['statuses']}, recovered by key {result['recovered']}, "
                f"worker restarts so far {result['worker_restarts']}",
                flush=True,
            )
        print()
        print(header)
        for r in rows:
            print(
                f"{r['scenario']:<14} {r['sent']:>5} {r['201']:>5} {r['stored']:>6} {r['lost']:>4} "
                f"{r['doubled']:>7} {r['stored_but_failed']:>7} {fmt(r['p95_ms']):>7} {fmt(r['p95_healthy_ms']):>7} "
                f"{fmt(r['p95_fault_ms']):>7} {r['votes_in_fault']:>7} {fmt(r['catch_up_s'], 1):>10}"
            )
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
        print("p95 ms: every vote; healthy: votes started outside the fault; fault: votes started during it")
        print("failed* = stored but neither answered 201 nor recovered as 201 by its Idempotency-Key")
        print("targets: 0 lost, 0 doubled, 0 failed*, p95 fault < 300 ms for redis_freeze, catch-up ≤ 60 s")
    finally:
        for child in reversed(children):
            child.stop()
        redis.stop()
        proxy.stop()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            bench_recompute.drop(args.database)


if __name__ == "__main__":
    main()
