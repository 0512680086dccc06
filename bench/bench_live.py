#!/usr/bin/env python3
"""N live battles streamed at once through the production web command.

    .venv/bin/python bench/bench_live.py [--n 16 100 500] [--ramp 0]

Needs PostgreSQL and Redis (DATABASE_URL's server, scratch database
``arena_bench_live`` by default: --db; REDIS_URL / REDIS_CACHE_URL as exported, else
redis://127.0.0.1:6379/3 and /4). It starts:

* bench/fake_provider.py: an OpenAI-compatible server streaming 20 chunks
  per answer over 10 s (the first chunk 0.5 s after the request), in chunked
  encoding on kept-alive connections as real providers answer
  (--provider-close: one connection per answer, closed after it);
* the web exactly as in production, one process:
  ``gunicorn arena.asgi:application -k uvicorn_worker.UvicornWorker --workers 1``
  (DEBUG off, the battle rate limits raised through the environment);
* a poller process that GETs /api/v1/leaderboard/ back to back while the
  streams run.

For each N: N voters in separate sessions (cookie + CSRF token, as the page)
open a live battle each on two models with max_concurrency 0 (no cap), then
(after one unreported warm-up round of 4) all POST their stream/ at once
(--ramp S spreads the starts evenly over S seconds instead) from --clients
processes (2; battle i from process i mod 2, all starting at the same
clock time), so the client's own CPU does not delay the server it measures.
It prints: streams completed (an ``end`` event with status ready), time to
the first ``delta`` event from the POST (p50/p95/max) and that minus the
provider's own first-chunk delay (the overhead the arena adds), the time to
the response headers (the checks and the claim done), stream duration p95,
the leaderboard's p50/p95/max and request count while the streams ran, and
the CPU seconds the web worker (and per stream), the provider and the
client processes used meanwhile.

Targets (issue #14): every stream completes, TTFE p95 within 100 ms of the
provider's, leaderboard p95 < 50 ms, N >= 500.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CHUNKS, SECONDS = 20, 10.0
FIRST_CHUNK = SECONDS / CHUNKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def ms(v: float) -> str:
    return f"{v * 1000:.0f}"


# --- setup --------------------------------------------------------------------------


def server_env(db: str) -> dict[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not base.startswith("postgres"):
        sys.exit("bench_live needs PostgreSQL: export DATABASE_URL=postgres://...")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=base.rsplit("/", 1)[0] + "/" + db,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3"),
        REDIS_CACHE_URL=os.environ.get("REDIS_CACHE_URL", "redis://127.0.0.1:6379/4"),
        DEBUG="0",
        SECRET_KEY="bench-live-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
        ARENA_VAR_DIR=str(ROOT / "var" / "bench-live"),
        ARENA_BATTLE_RATE="1000000/m",
        ARENA_BATTLE_RATE_PER_ADDRESS="1000000/m",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_SSL_REDIRECT="0",
        WEB_CONCURRENCY="1",
    )
    return env


def create_db(env: dict[str, str], db: str) -> None:
    import psycopg

    admin_url = env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
            conn.execute(f'CREATE DATABASE "{db}"')
    Path(env["ARENA_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PY, "manage.py", "load_demo", "-v", "0"], cwd=ROOT, env=env, check=True)


SETUP = """
import random
from arena.models import ArenaModel, Battle, Voter
from ratings.services import recompute_publish
from votes.models import Vote
base = {base!r}
Battle.objects.filter(model_a__provider_kind="openai").delete()
for name in ("bench-live-a", "bench-live-b"):
    ArenaModel.objects.update_or_create(name=name, defaults=dict(
        display_name=name, organization="Bench", provider_kind="openai", max_concurrency=0,
        status="active", weight=1, consecutive_failures=0,
        provider_settings={{"base_url": base, "model": name, "timeout": 30}}))
demo = list(ArenaModel.objects.exclude(provider_kind="openai"))
if demo and Vote.objects.count() < 500:
    voter = Voter.objects.create()
    rng = random.Random(1)
    Vote.objects.bulk_create([Vote(voter=voter, model_a=a, model_b=b, winner=rng.choice("ab"))
                              for a, b in (rng.sample(demo, 2) for _ in range(500))])
    recompute_publish(force=True)
"""


def setup_models(env: dict[str, str], provider_url: str) -> None:
    code = "import django; django.setup()\n" + SETUP.format(base=provider_url)
    subprocess.run([PY, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "arena.settings"}, check=True)


def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    sys.exit(f"{url} did not come up")


# --- the load -------------------------------------------------------------------------


def no_cookie_jar():
    """The client keeps no cookies: each simulated voter sends its own."""
    import httpx

    return httpx.Cookies(http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])))


async def open_sessions(client, n: int) -> list[dict]:
    import httpx

    sem = asyncio.Semaphore(32)

    async def one() -> dict:
        for attempt in range(3):
            try:
                return await open_one()
            except httpx.TransportError:  # a keep-alive connection the server closed meanwhile
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def open_one() -> dict:
        async with sem:
            page = await client.get("/arena/")
            csrf = page.cookies["csrftoken"]
            headers = {"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}"}
            opened = await client.post("/api/v1/battles/", json={"prompt": "Stream me twenty words."}, headers=headers)
            if opened.status_code != 201:
                raise RuntimeError(f"open: {opened.status_code} {opened.text[:200]}")
            session = opened.cookies["sessionid"]
            return {
                "id": opened.json()["id"],
                "headers": {"X-CSRFToken": csrf, "Cookie": f"csrftoken={csrf}; sessionid={session}"},
            }

    return await asyncio.gather(*(one() for _ in range(n)))


async def stream_one(address: tuple[str, int], battle: dict, delay: float) -> dict:
    """One voter's stream POST on a connection of its own, read as it comes.
    Plain asyncio streams, not httpx: at N = 500 httpx cost the client
    processes about as much CPU as the web process they measure, on the same
    two cores."""
    await asyncio.sleep(delay)
    result = {"ok": False, "ttfe": None, "headers": None, "duration": None, "error": ""}
    t0 = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 30)
        head = "".join(f"{k}: {v}\r\n" for k, v in battle["headers"].items())
        writer.write(
            f"POST /api/v1/battles/{battle['id']}/stream/ HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            f"{head}Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        status_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        result["headers"] = time.perf_counter() - t0  # the checks and the claim are done
        status = int(status_head.split(b" ", 2)[1])
        chunked = b"transfer-encoding: chunked" in status_head.lower()
        body = b""
        while True:
            if chunked:
                size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 120)).split(b";")[0], 16)
                piece = (await asyncio.wait_for(reader.readexactly(size + 2), 120))[:size]
                if not size:
                    break
            else:
                piece = await asyncio.wait_for(reader.read(65536), 120)
                if not piece:
                    break
            body += piece
            if result["ttfe"] is None and b"event: delta\n" in body:
                result["ttfe"] = time.perf_counter() - t0
            if status != 200:
                continue
            end = body.find(b"event: end\ndata: ")
            if end >= 0 and body.endswith(b"\n\n"):
                data = json.loads(body[end + 17 :].split(b"\n", 1)[0])
                result["ok"] = data["status"] == "ready"
                if not result["ok"]:
                    result["error"] = f"end: {data}"
                break
            if result["ttfe"] is not None:
                body = body[-64:]  # only the end event is still looked for
        if status != 200:
            result["error"] = f"HTTP {status}: {body[:200]!r}"
        elif not result["ok"] and not result["error"]:
            result["error"] = "the stream ended without an end event"
    except Exception as exc:  # noqa: BLE001 - counted as a failed stream
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
    result["duration"] = time.perf_counter() - t0
    return result


def client_options(base_url: str) -> dict:
    import httpx

    return {
        "base_url": base_url,
        "timeout": httpx.Timeout(120, connect=30, pool=None),
        "limits": httpx.Limits(max_connections=None, max_keepalive_connections=None),
        "cookies": no_cookie_jar(),
    }


async def run_streams(base_url: str, battles: list[dict], start_at: float, delays: list[float]) -> list[dict]:
    # Every stream on a connection of its own, opened when the stream starts.
    host, port = base_url.split("://", 1)[1].rsplit(":", 1)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return await asyncio.gather(*(stream_one((host, int(port)), b, d) for b, d in zip(battles, delays, strict=True)))


async def open_all(base_url: str, n: int) -> list[dict]:
    import httpx

    async with httpx.AsyncClient(**client_options(base_url)) as client:
        return await open_sessions(client, n)


def client_process(job_file: str) -> None:
    """Child process: stream its share of the battles, print the results and its own CPU time."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    job = json.loads(Path(job_file).read_text())
    cpu0 = time.process_time()
    results = asyncio.run(run_streams(job["base_url"], job["battles"], job["start_at"], job["delays"]))
    print(json.dumps({"results": results, "cpu": time.process_time() - cpu0}), flush=True)


def run_clients(base_url: str, battles: list[dict], ramp: float, processes: int, work_dir: Path):
    """The N streams from ``processes`` client processes (battle i goes to
    process i % processes), all starting together: stream i is sent at
    ramp * i / (N - 1) seconds (all at once when ramp is 0)."""
    n = len(battles)
    start_at = time.time() + 2.0  # every client process is up and waiting by then
    delays = [ramp * i / max(1, n - 1) if ramp else 0.0 for i in range(n)]
    procs = []
    for k in range(processes):
        job = work_dir / f"client-{os.getpid()}-{k}.json"
        job.write_text(
            json.dumps(
                {
                    "base_url": base_url,
                    "start_at": start_at,
                    "battles": battles[k::processes],
                    "delays": delays[k::processes],
                }
            )
        )
        procs.append(
            (subprocess.Popen([PY, __file__, "--client", str(job)], cwd=ROOT, stdout=subprocess.PIPE, text=True), job)
        )
    results, cpu = [], 0.0
    for proc, job in procs:
        out, _ = proc.communicate(timeout=600)
        job.unlink(missing_ok=True)
        report = json.loads(out.strip().splitlines()[-1])
        results += report["results"]
        cpu += report["cpu"]
    return results, cpu, time.time() - start_at


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def poll_leaderboard(base_url: str, stop_file: str) -> None:
    """Child process: GET the leaderboard back to back until stop_file exists."""
    import httpx

    times = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while not os.path.exists(stop_file):
            t = time.perf_counter()
            r = client.get("/api/v1/leaderboard/")
            times.append(time.perf_counter() - t)
            if r.status_code != 200:
                print(json.dumps({"error": r.status_code}), flush=True)
            time.sleep(0.05)
    print(json.dumps({"times": times}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[16, 100, 500])
    parser.add_argument("--ramp", type=float, default=0.0, help="spread the stream starts over this many seconds")
    parser.add_argument("--clients", type=int, default=2, help="client processes sending the streams")
    parser.add_argument("--db", default="arena_bench_live")
    parser.add_argument("--app", default="arena.asgi:application", help="the ASGI application (Procfile's by default)")
    parser.add_argument(
        "--provider-close",
        action="store_true",
        help="the fake provider closes its connection after each answer (default: kept alive, chunked)",
    )
    parser.add_argument("--poll", nargs=2, metavar=("URL", "STOP_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--client", metavar="JOB_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll:
        poll_leaderboard(*args.poll)
        return
    if args.client:
        client_process(args.client)
        return

    env = server_env(args.db)
    create_db(env, args.db)
    provider_port, web_port = free_port(), free_port()
    provider_url = f"http://127.0.0.1:{provider_port}/v1"
    base_url = f"http://127.0.0.1:{web_port}"
    work_dir = ROOT / "var" / "bench-live"
    setup_models(env, provider_url)
    procs = []
    try:
        provider = subprocess.Popen(
            [
                PY,
                "bench/fake_provider.py",
                "--port",
                str(provider_port),
                "--chunks",
                str(CHUNKS),
                "--seconds",
                str(SECONDS),
                *(["--close"] if args.provider_close else []),
            ],
            cwd=ROOT,
            start_new_session=True,
        )
        procs.append(provider)
        web_cmd = [
            str(Path(PY).parent / "gunicorn"),
            args.app,
            "-k",
            "uvicorn_worker.UvicornWorker",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{web_port}",
        ]
        print("web:", " ".join(web_cmd[1:]).replace(str(Path(PY).parent) + "/", ""), flush=True)
        web = subprocess.Popen(web_cmd, cwd=ROOT, env=env, start_new_session=True)
        procs.append(web)
        wait_http(base_url + "/api/v1/leaderboard/")
        web_worker = children(web.pid)[0]
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        how = f"spread evenly over {args.ramp:g} s" if args.ramp else "all at once"
        print(
            f"provider: {CHUNKS} chunks per answer over {SECONDS:.0f} s, first after {ms(FIRST_CHUNK)} ms, "
            f"{'a connection per answer' if args.provider_close else 'connections kept alive'}; "
            f"stream starts {how}, from {args.clients} client processes"
        )
        print(
            f"{'N':>5} {'done':>9} {'TTFE p50/p95/max ms':>20} {'over provider p95':>18} {'headers p95':>11} "
            f"{'stream p95 s':>12} {'leaderboard p50/p95/max ms (n)':>32}   CPU s: web (ms/stream), provider, clients"
        )
        setup_models(env, provider_url)
        warm = asyncio.run(open_all(base_url, 4))  # warm up: imports, pools, the first provider connections
        run_clients(base_url, warm, 0, 1, work_dir)
        for n in args.n:
            setup_models(env, provider_url)
            battles = asyncio.run(open_all(base_url, n))
            stop_file = str(work_dir / f"stop-{os.getpid()}")
            Path(stop_file).unlink(missing_ok=True)
            poller = subprocess.Popen(
                [PY, __file__, "--poll", base_url, stop_file], cwd=ROOT, stdout=subprocess.PIPE, text=True
            )
            print(f"streams starting: {n}", file=sys.stderr, flush=True)
            cpu_web, cpu_provider = cpu_seconds(web_worker), cpu_seconds(provider.pid)
            results, cpu_clients, _ = run_clients(base_url, battles, args.ramp, args.clients, work_dir)
            cpu_web, cpu_provider = cpu_seconds(web_worker) - cpu_web, cpu_seconds(provider.pid) - cpu_provider
            Path(stop_file).touch()
            out, _ = poller.communicate(timeout=60)
            Path(stop_file).unlink(missing_ok=True)
            lb = json.loads(out.strip().splitlines()[-1]).get("times", [])
            ok = [r for r in results if r["ok"]]
            ttfe = [r["ttfe"] for r in results if r["ttfe"] is not None]
            heads = [r["headers"] for r in results if r["headers"] is not None]
            dur = [r["duration"] for r in ok]
            print(
                f"{n:>5} {len(ok):>4}/{n:<4} {ms(pct(ttfe, 50)):>6}/{ms(pct(ttfe, 95))}/{ms(max(ttfe or [0])):>5} "
                f"{'+' + ms(pct(ttfe, 95) - FIRST_CHUNK):>18} {ms(pct(heads, 95)):>11} {pct(dur, 95):>12.2f} "
                f"{ms(pct(lb, 50)):>14}/{ms(pct(lb, 95))}/{ms(max(lb or [0]))} ({len(lb)})"
                f"   {cpu_web:.1f} ({cpu_web / n * 1000:.0f}), {cpu_provider:.1f}, {cpu_clients:.1f}"
                f"   load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            errors = sorted({r["error"] for r in results if r["error"]})
            for e in errors[:5]:
                print("      failed:", e)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
