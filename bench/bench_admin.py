"""Admin list pages at 1,000,000 votes in PostgreSQL: how long the votes
changelist (and its neighbours) takes to render, with and without filters.

    .venv/bin/python bench/bench_admin.py [--votes 1000000] [--models 200] [--repeat 15]
        [--database postgres://postgres@127.0.0.1:5432/arena_bench_admin] [--keep] [--reuse]

Creates (and drops at the end) a scratch database, loads the votes with
bench_recompute's COPY loader, spreads them over the last 400 days, excludes
2% with four reasons, publishes one snapshot, then renders each page through
Django's test Client as a logged-in superuser (the whole request: middleware,
queries, templates) and prints the median and 95th percentile in ms, the
queries per page and the count the page shows. Target: the votes changelist
under a second.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_recompute  # the scratch-database helpers and the COPY loader

TARGET_MS = 1000.0


def spread_and_exclude() -> float:
    """Votes over the last 400 days (newest ids newest), 2% excluded."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT max(id) FROM votes_vote")
        top = cur.fetchone()[0]
        cur.execute(
            "UPDATE votes_vote SET created_at = now() - (%s - id) * interval '400 days' / %s, "
            "excluded = (id %% 50 = 0), "
            "exclusion_reason = CASE WHEN id %% 50 = 0 THEN "
            "(ARRAY['spam', 'duplicate', 'named', 'anomalous_voter'])[1 + (id / 50) %% 4] ELSE '' END, "
            "excluded_at = CASE WHEN id %% 50 = 0 THEN now() END",
            [top, top],
        )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE votes_vote")
    return time.perf_counter() - started


def pages() -> list[tuple[str, str]]:
    from django.db.models import Count
    from django.utils import timezone

    from arena.models import ArenaModel, Voter
    from votes.models import Vote

    by_votes = list(
        Vote.objects.values("model_a_id").annotate(n=Count("id")).order_by("-n").values_list("model_a_id", flat=True)
    )
    popular, rare = by_votes[0], by_votes[-1]
    voter = Voter.objects.order_by("id").first()
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    week = f"created_at__gte={today - timezone.timedelta(days=7)}&created_at__lt={today + timezone.timedelta(days=1)}"
    rare_name = ArenaModel.objects.get(id=rare).name
    return [
        ("votes: no filter", "/admin/votes/vote/"),
        ("votes: page 50", "/admin/votes/vote/?p=50"),
        ("votes: excluded", "/admin/votes/vote/?excluded__exact=1"),
        ("votes: reason=spam", "/admin/votes/vote/?reason=spam"),
        ("votes: winner=tie", "/admin/votes/vote/?winner__exact=tie"),
        ("votes: popular model", f"/admin/votes/vote/?model={popular}"),
        (f"votes: rarest model ({rare_name})", f"/admin/votes/vote/?model={rare}"),
        (
            "votes: popular model, b won, counted",
            f"/admin/votes/vote/?model={popular}&winner__exact=b&excluded__exact=0",
        ),
        ("votes: one voter", f"/admin/votes/vote/?voter={voter.id}"),
        ("votes: search voter key", f"/admin/votes/vote/?q={voter.key}"),
        ("votes: past 7 days", f"/admin/votes/vote/?{week.replace('+', '%2B')}"),
        ("votes: oldest first", "/admin/votes/vote/?o=2"),
        ("vote exclusion events", "/admin/votes/voteexclusionevent/"),
        ("voters", "/admin/arena/voter/"),
        ("models (200, with ratings)", "/admin/arena/arenamodel/"),
        ("snapshots", "/admin/ratings/snapshot/"),
        ("dashboard", "/admin/dashboard/"),
    ]


def measure(client, url: str, repeat: int) -> dict:
    """Median and p95 of ``repeat`` renders (after one warm-up), the queries
    of one render, and the result count the page shows (≈ when estimated)."""
    from django.db import connection

    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}")
    found = re.search(r'<p class="paginator">(.*?)</p>', response.content.decode(), re.S)
    shown = None
    if found:
        text = re.sub(r"<[^>]+>", " ", found.group(1))
        number = re.search(r"(about\s+)?([\d,]+)\s+\w+\s*(Show all)?\s*$", " ".join(text.split()))
        shown = f"{'≈' if number.group(1) else ''}{number.group(2)}" if number else None
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return {"median": statistics.median(times), "p95": float(np.percentile(times, 95)),
            "queries": len(executed), "shown": shown}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--votes", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_bench_admin")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--reuse", action="store_true", help="use the votes a --keep run left in the database")
    args = ap.parse_args(argv)
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if not args.reuse:
        bench_recompute.recreate(args.database)
    try:
        bench_recompute.setup_django(args.database)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client

        from ratings.services import recompute_publish
        from votes.models import Vote

        call_command("migrate", verbosity=0)
        print(f"# admin benchmark: {args.votes:,} votes × {args.models} models, PostgreSQL, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} at the start")  # fmt: skip
        if args.reuse:
            print(f"reusing {Vote.objects.count():,} stored votes")
        else:
            load_s = bench_recompute.load_votes(args.votes, args.models, args.seed)
            prep_s = spread_and_exclude()
            t = time.perf_counter()
            recompute_publish(force=True)
            print(f"loaded {args.votes:,} votes in {load_s:.1f} s, spread and excluded 2% in {prep_s:.1f} s, "
                  f"published a snapshot in {time.perf_counter() - t:.1f} s")  # fmt: skip
        user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
        client = Client()
        client.force_login(user)
        print(f"{'page':<44} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'shown':>12}")
        verdicts = []
        for label, url in pages():
            m = measure(client, url, args.repeat)
            print(f"{label:<44} {m['median']:>10.1f} {m['p95']:>8.1f} {m['queries']:>8} {m['shown'] or '':>12}")
            if label.startswith("votes:"):
                verdicts.append(m["median"])
        worst = max(verdicts)
        print(f"slowest votes changelist median {worst:.1f} ms   target < {TARGET_MS:.0f} ms  "
              f"{'PASS' if worst < TARGET_MS else 'FAIL'}")  # fmt: skip
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            bench_recompute.drop(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
