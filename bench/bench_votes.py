#!/usr/bin/env python3
"""Votes per second through the production web command: N voters, each in a
session of their own, open a battle and vote on it, over and over.

    .venv/bin/python bench/bench_votes.py [--voters 10 50] [--workers 1 2] [--rate 0 100 200]
        [--seconds 20] [--compare] [--database postgres://postgres@127.0.0.1:5432/arena_bench_votes]
        [--answers DIR]

Needs PostgreSQL and Redis. It creates (and drops at the end) a scratch
database with bench_recompute's helpers, imports an answer set (the real
MT-bench set, 80 two-turn questions × 31 models, from ../shared/data when it
is there, else --answers DIR, else the demo arena) and publishes one snapshot
over generated votes, so sampling sees established models as in production.
Redis: REDIS_URL / REDIS_CACHE_URL as exported (use databases of your own).

The web is the ``Procfile``'s ``web:`` line run by /bin/sh exactly as written,
with WEB_CONCURRENCY=1 and 2 (--workers: one web process, and the Procfile's
default of two), DEBUG off, against that database and Redis. No Celery
worker runs: the votes queue recomputes that nobody takes (the queue is
emptied at the end), so the figures are the web process's own.

Each voter is a separate session (its own ``sessionid`` and ``csrftoken``
cookies and its own keep-alive connection, as a browser tab): GET
/api/v1/csrf/ once, then loop POST /api/v1/battles/ {} → POST
/api/v1/battles/{id}/vote/ {"winner": …}. A voter that is answered 409
``nothing_left_to_show`` (it has seen every answer it may be shown) starts a
new session. The client is a few lines of asyncio over raw HTTP/1.1 (uvloop),
so the load generator costs little of the two cores the server also needs.

Rate limits stay ON (every request counts them in Redis, as in production)
but are raised out of the load's reach: 50 voters from one address would
otherwise hit ARENA_VOTE_RATE_PER_ADDRESS (300/m) in seconds; a voter's own
ARENA_VOTE_RATE (30/m) and ARENA_BATTLE_RATE (60/m) are human speeds a
script passes in two seconds. The daily cap stays on at 1,000,000, so its
count query runs as in production.

Two kinds of load, for each N voters (--rate): 0, each voter opens and votes
back to back, as fast as it is answered, which measures the most votes/s
the server gives; and R > 0, the N voters together offer R votes/s on a
fixed schedule (each one open + vote every N/R s), which measures the
latency at that load. (Back to back, N voters that wait L s per vote give
exactly N / L votes/s, so "p95 < 100 ms at 50 voters" can only be met
back to back at over 500 votes/s; at a given offered rate it is what a
voter waits.) Paced latencies run from the scheduled start: a server that
falls behind shows it in the latencies, not only in fewer votes.

For each row: a warm-up (not reported), then --seconds of measurement.
Printed: votes/s (votes answered 201 within the window), p50/p95 of the
open, of the vote and of the pair (open + vote, what one voter waits),
errors by status, the web processes' and PostgreSQL's CPU per vote (from
/proc). --compare runs the same against the previous deployment form too:
WSGI under gunicorn's gthread worker (one process, 8 threads).

Target (issue #14): ≥ 200 votes/s with p95 < 100 ms at 50 voters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import bench_recompute  # noqa: E402 - the scratch-database helpers, after sys.path
from bench_live import free_port, pct  # noqa: E402 - the same port and percentile helpers

PY = sys.executable
# ../shared/data beside the checkout (or beside its parent, for a git worktree).
MT_BENCH = next(
    (
        p / "shared" / "data" / "answers" / "mt_bench"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "data" / "answers" / "mt_bench").exists()
    ),
    None,
)
WINNERS = ["a", "b", "tie", "both_bad"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- setup ------------------------------------------------------------------------------

SEED_SNAPSHOT = """
import django
django.setup()
import random
from arena.models import ArenaModel, Voter
from ratings.services import recompute_publish
from votes.models import Vote
models = list(ArenaModel.objects.filter(status="active"))
voter = Voter.objects.create(key="bench-votes-seed")
rng = random.Random(1)
Vote.objects.bulk_create([Vote(voter=voter, model_a=a, model_b=b, winner=rng.choice("ab"), source="import")
                          for a, b in (rng.sample(models, 2) for _ in range(60 * len(models)))])
recompute_publish(force=True)
print(f"{len(models)} models, {Vote.objects.count()} seed votes, one snapshot")
"""


def server_env(args, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=args.database,
        REDIS_URL=args.redis_url,
        REDIS_CACHE_URL=args.redis_cache_url,
        ARENA_VAR_DIR=str(ROOT / "var" / "bench-votes"),
        DEBUG="false",
        SECRET_KEY="bench-votes-only-secret-key-0123456789abcdefghij",
        ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on loopback (no TLS proxy in front): cookies must not be Secure.
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_SSL_REDIRECT="false",
        # Limits on (counted in Redis on every request) but out of the load's reach.
        ARENA_VOTE_RATE="1000000/m",
        ARENA_VOTE_RATE_PER_ADDRESS="1000000/m",
        ARENA_BATTLE_RATE="1000000/m",
        ARENA_BATTLE_RATE_PER_ADDRESS="1000000/m",
        ARENA_DAILY_VOTE_CAP="1000000",
        LOG_LEVEL="WARNING",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        # The Procfile's commands (gunicorn) from this interpreter's environment.
        PATH=f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def prepare(args, env: dict[str, str]) -> str:
    bench_recompute.recreate(args.database)
    Path(env["ARENA_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    answers = args.answers or MT_BENCH
    if answers:
        subprocess.run([PY, "manage.py", "import_answers", str(answers), "-v", "0"], cwd=ROOT, env=env, check=True)
        label = f"answer set {Path(answers).name}"
    else:
        subprocess.run([PY, "manage.py", "load_demo", "-v", "0"], cwd=ROOT, env=env, check=True)
        label = "the demo arena"
    out = subprocess.run(
        [PY, "-c", SEED_SNAPSHOT],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "arena.settings"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return f"{label}: {out}"


def procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line[4:].strip()
    sys.exit("Procfile has no web: line")


class Web:
    """The web server in a process group of its own; stopped with the group."""

    def __init__(self, command: str, env: dict[str, str], log: Path, cwd: Path):
        self.command, self.env, self.log_path, self.cwd = command, env, log, cwd

    def start(self, port: int) -> Web:
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", self.command],
            cwd=self.cwd,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"web exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                status, _, _ = asyncio.run(one_get(port, "/api/v1/csrf/"))
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"web did not answer within 60 s:\n{self.log_path.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """Every process of the group (the gunicorn master and its worker)."""
        pgid = self.proc.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pgid:
                        pids.append(int(entry.name))
                except OSError:
                    pass
        return pids

    def cpu_by_process(self) -> dict[int, float]:
        seconds = {}
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                seconds[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
            except OSError:
                pass
        return seconds

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_process().values())

    def stop(self) -> None:
        """SIGTERM to the group, and wait until every process of it is gone (the
        shell exits at once; gunicorn still holds the port while it shuts down)."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.proc.poll()  # reap the shell, so that only live processes are left in the group
            if not self.worker_pids():
                break
            time.sleep(0.1)
        if self.worker_pids():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()


def postgres_cpu_seconds(database_url: str) -> float:
    """CPU of the PostgreSQL backends serving this database (on this machine)."""
    name = f" {urlparse(database_url).path.lstrip('/')} "
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if name not in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") + " ":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


# --- a minimal HTTP/1.1 keep-alive client --------------------------------------------------


class Conn:
    """One keep-alive connection with a browser's cookie jar for one host."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                return await self._exchange(method, path, body, headers or {})
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()  # a keep-alive connection the server had closed: once more on a new one
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method, path, body, headers):
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(body)}"]
        if body:
            lines.append("Content-Type: application/json")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length, chunked, close = 0, False, False
        for h in header_lines:
            name, _, value = h.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
            elif name == "set-cookie":
                m = re.match(r"\s*([^=;]+)=([^;]*)", value)
                if m:
                    self.cookies[m.group(1)] = m.group(2)
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            data = data[:-2]
        else:
            data = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, data, self.cookies

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def one_get(port: int, path: str):
    conn = Conn(port)
    try:
        return await conn.request("GET", path)
    finally:
        conn.close()


# --- the load -------------------------------------------------------------------------------


class Voter:
    def __init__(self, port: int, rng: random.Random):
        self.port, self.rng = port, rng
        self.conn: Conn | None = None

    async def new_session(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = Conn(self.port)
        status, body, cookies = await self.conn.request("GET", "/api/v1/csrf/")
        if status != 200 or "csrftoken" not in cookies:
            raise RuntimeError(f"csrf: {status} {body[:200]!r}")
        self.headers = {"X-CSRFToken": cookies["csrftoken"]}

    async def run(self, until: float, record: list, errors: dict, sessions: list, pace: float = 0.0) -> None:
        """Open and vote until ``until``: back to back (``pace`` 0), or one
        open + vote every ``pace`` seconds on a fixed schedule. Paced, each
        latency runs from the scheduled start, so a server that falls behind
        shows it in the figures rather than in fewer requests (no
        coordinated omission)."""
        await self.new_session()
        sessions[0] += 1
        scheduled = time.perf_counter() + self.rng.random() * pace  # voters spread over the first period
        while time.perf_counter() < until:
            if pace:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = scheduled
                scheduled += pace
            else:
                t0 = time.perf_counter()
            status, body, _ = await self.conn.request("POST", "/api/v1/battles/", b"{}", self.headers)
            t1 = time.perf_counter()
            if status != 201:
                if status == 409 and b"nothing_left_to_show" in body:
                    await self.new_session()
                    sessions[0] += 1
                    continue
                errors[f"open {status}"] = errors.get(f"open {status}", 0) + 1
                await asyncio.sleep(0.05)
                continue
            battle = json.loads(body)["id"]
            vote = json.dumps({"winner": self.rng.choice(WINNERS)}).encode()
            status, body, _ = await self.conn.request("POST", f"/api/v1/battles/{battle}/vote/", vote, self.headers)
            t2 = time.perf_counter()
            if status != 201:
                errors[f"vote {status}"] = errors.get(f"vote {status}", 0) + 1
                continue
            record.append((t0, t1, t2))

    def close(self):
        if self.conn is not None:
            self.conn.close()


async def load(port: int, n: int, warmup: float, seconds: float, web: Web, seed: int, rate: float = 0.0) -> dict:
    """``rate``: the offered votes/s of all voters together (0: each votes as
    fast as it is answered)."""
    rng = random.Random(seed)
    voters = [Voter(port, random.Random(rng.random())) for _ in range(n)]
    record: list = []
    errors: dict = {}
    sessions = [0]
    start = time.perf_counter()
    window_start, window_end = start + warmup, start + warmup + seconds
    cpu: dict[str, float] = {}

    async def cpu_marks():
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        cpu["start"], cpu["pg_start"] = web.cpu_by_process(), postgres_cpu_seconds(web.env["DATABASE_URL"])
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        cpu["end"], cpu["pg_end"] = web.cpu_by_process(), postgres_cpu_seconds(web.env["DATABASE_URL"])

    client_cpu0 = time.process_time()
    pace = n / rate if rate else 0.0
    await asyncio.gather(cpu_marks(), *(v.run(window_end, record, errors, sessions, pace) for v in voters))
    client_cpu = time.process_time() - client_cpu0
    for v in voters:
        v.close()
    inside = [r for r in record if window_start <= r[0] and r[2] <= window_end]
    opens = [r[1] - r[0] for r in inside]
    votes = [r[2] - r[1] for r in inside]
    pairs = [r[2] - r[0] for r in inside]
    # Each process's share of one core (the busiest first; the master's is ~0):
    # a process that took most connections shows as one near 100%.
    per_process = sorted(((cpu["end"][pid] - cpu["start"].get(pid, 0.0)) / seconds for pid in cpu["end"]), reverse=True)
    web_cpu = sum(per_process) * seconds
    return {
        "rate": rate,
        "voters": n,
        "votes": len(inside),
        "votes_per_s": len(inside) / seconds,
        "open": (pct(opens, 50), pct(opens, 95)),
        "vote": (pct(votes, 50), pct(votes, 95)),
        "pair": (pct(pairs, 50), pct(pairs, 95)),
        "errors": errors,
        "sessions": sessions[0],
        "web_cpu_ms_per_vote": 1000 * web_cpu / max(1, len(inside)),
        "pg_cpu_ms_per_vote": 1000 * (cpu["pg_end"] - cpu["pg_start"]) / max(1, len(inside)),
        "web_cpu_share": web_cpu / seconds,
        "web_split": "+".join(f"{100 * share:.0f}" for share in per_process if share >= 0.005),
        "client_cpu_share": client_cpu / (warmup + seconds),
    }


def ms(pair: tuple[float, float]) -> str:
    return f"{pair[0] * 1000:.0f} / {pair[1] * 1000:.0f}"


def clear_queue(redis_url: str) -> None:
    """Drop the recompute messages no worker took (the broker's default queue)."""
    import redis

    redis.Redis.from_url(redis_url).delete("celery")


def run_config(label: str, command: str, args, env: dict[str, str], port: int, cwd: Path) -> list[dict]:
    log = Path(env["ARENA_VAR_DIR"]) / f"web-{label}.log"
    web = Web(command, env, log, cwd).start(port)
    rows = []
    try:
        for n, rate in [(n, rate) for rate in args.rate for n in args.voters]:
            result = asyncio.run(load(port, n, args.warmup, args.seconds, web, seed=n, rate=rate))
            result["config"] = label
            rows.append(result)
            offered = f"{rate:g}/s" if rate else "max"
            print(
                f"{label:<8} {env['WEB_CONCURRENCY']:>5} {offered:>7} {n:>6} {result['votes']:>6} "
                f"{result['votes_per_s']:>8.1f} {ms(result['open']):>13} "
                f"{ms(result['vote']):>13} {ms(result['pair']):>13} {result['web_cpu_ms_per_vote']:>8.2f} "
                f"{result['pg_cpu_ms_per_vote']:>7.2f} "
                f"{100 * result['web_cpu_share']:>6.0f}% {result['web_split']:>9} "
                f"{100 * result['client_cpu_share']:>6.0f}%  "
                f"{result['errors'] or ''}",
                flush=True,
            )
    finally:
        web.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_bench_votes")
    parser.add_argument("--voters", type=int, nargs="+", default=[10, 50])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="WEB_CONCURRENCY: web processes (Procfile default 2)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[0, 100, 200],
        help="offered votes/s of all voters together, on a fixed schedule; 0: back to back (the maximum)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per N")
    parser.add_argument("--warmup", type=float, default=3.0, help="unreported seconds before each window")
    parser.add_argument("--answers", type=Path, help="an answer set directory (FastChat llm_judge layout)")
    parser.add_argument("--compare", action="store_true", help="also run WSGI under gunicorn gthread (8 threads)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    args.redis_url = os.environ.get("REDIS_URL")
    args.redis_cache_url = os.environ.get("REDIS_CACHE_URL") or args.redis_url
    if not args.redis_url:
        sys.exit("bench_votes needs Redis: export REDIS_URL=redis://127.0.0.1:6379/<db> (and REDIS_CACHE_URL)")
    if not urlparse(args.database).scheme.startswith("postgres"):
        sys.exit("--database must be a postgres:// URL")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    port = free_port()
    env = server_env(args, port)
    print("# setting up:", prepare(args, env), flush=True)
    configs = [("asgi", procfile_web(), workers) for workers in args.workers]
    if args.compare:
        gthread = "gunicorn arena.wsgi:application -k gthread --workers 1 --threads 8 --bind 0.0.0.0:${PORT}"
        configs.append(("gthread", gthread, 1))
    for label, command in dict.fromkeys((label, command) for label, command, _ in configs):
        print(f"# {label}: {command}")
    print(
        f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; warm-up {args.warmup:g} s, "
        f"window {args.seconds:g} s per row",
        flush=True,
    )
    print(
        f"{'config':<8} {'procs':>5} {'offered':>7} {'voters':>6} {'votes':>6} {'votes/s':>8} {'open p50/p95':>13} "
        f"{'vote p50/p95':>13} "
        f"{'pair p50/p95':>13} {'cpu ms/v':>8} {'pg ms/v':>7} {'web':>7} {'by proc':>9} {'client':>7}  errors"
    )
    try:
        for label, command, workers in configs:
            run_config(label, command, args, {**env, "WEB_CONCURRENCY": str(workers)}, port, ROOT)
    finally:
        clear_queue(args.redis_url)
        if not args.keep:
            bench_recompute.drop(args.database)
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    print(
        "# latencies in ms; cpu ms/v: the web processes' CPU per vote pair (open + vote), pg ms/v: PostgreSQL's; "
        "web/client: share of one core; by proc: each web process's share, the busiest first"
    )
    print("# target (issue #14): ≥ 200 votes/s with pair p95 < 100 ms at 50 voters")


if __name__ == "__main__":
    main()
