"""What the operators' endpoints cost at 1,000,000 votes in PostgreSQL:
``GET /healthz`` and ``GET /metrics`` (every figure read from the database and
the broker at scrape time).

    .venv/bin/python bench/bench_ops.py [--votes 1000000] [--battles 1000000] [--repeat 20]
        [--database postgres://postgres@127.0.0.1:5432/arena_bench_ops] [--keep] [--reuse]

Creates (and drops at the end) a scratch database, loads the votes with
bench_recompute's COPY loader and as many battles by INSERT … SELECT, publishes
one snapshot, then calls each endpoint through Django's test Client (the whole
request) and prints the median and 95th percentile in ms. Uses REDIS_URL /
REDIS_CACHE_URL from the environment (or the embedded default without them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_recompute  # the scratch-database helpers and the COPY loader


def load_battles(n: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM arena_arenamodel")
        lo, hi = cur.fetchone()
        cur.execute("SELECT min(id) FROM arena_voter")
        (voter,) = cur.fetchone()
        # Mostly voted; 5% ready (half of those past the vote window), a few streaming.
        cur.execute(
            "INSERT INTO arena_battle (id, prompt, response_a, response_b, status, created_at, model_a_id, model_b_id,"
            " voter_id, client_hash, failure, identity_leak, ready_at, turns, streaming_since) "
            "SELECT gen_random_uuid(), 'p', 'a', 'b', "
            " CASE WHEN i %% 20 = 0 THEN 'ready' WHEN i %% 1000 = 1 THEN 'pending' ELSE 'voted' END, "
            " now() - i * interval '1 second', %s + i %% (%s - %s), %s + (i + 1) %% (%s - %s), %s, '', '', false, "
            " now() - i * interval '1 second', '[]'::jsonb, CASE WHEN i %% 1000 = 1 THEN now() END "
            "FROM generate_series(1, %s) i",
            [lo, hi, lo, lo, hi, lo, voter, n],
        )
        cur.execute("ANALYZE arena_battle")
    return time.perf_counter() - started


def measure(client, url: str, repeat: int, **headers) -> dict:
    client.get(url, **headers)  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"status": response.status_code, "median": statistics.median(times),
            "p95": times[min(len(times) - 1, int(0.95 * len(times)))]}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--votes", type=int, default=1_000_000)
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_bench_ops")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--reuse", action="store_true", help="use the data a --keep run left in the database")
    args = ap.parse_args(argv)

    if not args.reuse:
        bench_recompute.recreate(args.database)
    bench_recompute.setup_django(args.database)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    try:
        if not args.reuse:
            call_command("migrate", verbosity=0)
            print(f"loaded {args.votes:,} votes in {bench_recompute.load_votes(args.votes, args.models, 0):.1f} s")
            print(f"loaded {args.battles:,} battles in {load_battles(args.battles):.1f} s")
            from ratings.services import recompute_publish

            recompute_publish()
        settings.ARENA_METRICS_TOKEN = "bench"
        settings.ALLOWED_HOSTS = ["testserver"]
        client = Client()
        for name, url, headers in (
            ("GET /healthz", "/healthz", {}),
            ("GET /metrics", "/metrics", {"HTTP_AUTHORIZATION": "Bearer bench"}),
        ):
            m = measure(client, url, args.repeat, **headers)
            print(f"{name:14s} HTTP {m['status']}  median {m['median']:7.1f} ms  p95 {m['p95']:7.1f} ms"
                  f"  ({args.repeat} requests)")  # fmt: skip
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            bench_recompute.drop(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
