#!/usr/bin/env python3
"""Import speed of ``import_battles`` into PostgreSQL, and a dev check of the
imported Chatbot Arena votes' leaderboard.

    .venv/bin/python bench/bench_import.py [--db arena_votes_bench] [--battles 1000000] [--repeat 1]

Creates (drops first) the scratch database ``--db`` on
postgres://postgres@127.0.0.1:5432, migrates it, and times, in one process:

1. the Chatbot Arena 33k CSV (../shared/data/votes, 25,938 votes, no judge ids),
   then the same file again (nothing added: the dedupe path);
2. a generated clean_battle JSONL of ``--battles`` votes (bench/gen_battles.py,
   200 models, written to /tmp once and reused), then again.

Prints votes/second (rows read / wall time of ``votes.importers.import_files``,
transaction and commit included) and the top of the leaderboard the 33k
votes give; LMArena's mid-2023 table had gpt-4, claude-v1,
claude-instant-v1, gpt-3.5-turbo on top. Reads ../shared/data, which the
committed tests never do.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "votes")
CSV_33K = os.path.join(SHARED, "chatbot-arena-33k-human-votes.csv")
EXPECTED_TOP4 = ["gpt-4", "claude-v1", "claude-instant-v1", "gpt-3.5-turbo"]
SERVER = "postgres://postgres@127.0.0.1:5432"


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def generated_file(n: int) -> str:
    path = f"/tmp/arena-bench-{n}-battles.jsonl"
    if not os.path.exists(path):
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "gen_battles.py"), "--battles", str(n), "--models", "200",
             "--format", "jsonl", "--out", path],
            check=True,
        )  # fmt: skip
    return path


def timed_import(path: str, label: str) -> float:
    from votes.importers import import_files

    stats = import_files([path], progress=False)
    print(
        f"  {label:<34} {stats.rows:>9,} rows  {stats.added:>9,} added  {stats.seconds:7.2f} s  "
        f"{stats.rate:>9,.0f} votes/s",
        flush=True,
    )
    return stats.rate


def setup_django(db: str) -> None:
    os.environ["DATABASE_URL"] = f"{SERVER}/{db}"
    os.environ.setdefault("ARENA_VAR_DIR", tempfile.mkdtemp(prefix="arena-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("DEBUG", "true")  # a development run: DEBUG is off unless set
    sys.path.insert(0, ROOT)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def top_of_leaderboard(n: int = 6) -> list[dict]:
    from ratings.selectors import joined, registry
    from ratings.services import recompute_publish

    snap = recompute_publish(force=True)
    return sorted(joined(snap.rows, registry()), key=lambda r: -r["rating"])[:n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="arena_votes_bench", help="scratch database (dropped and created)")
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="fresh databases per measurement (best is reported)")
    args = ap.parse_args(argv)

    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} at start")
    big = generated_file(args.battles)
    best_csv = best_big = 0.0
    for round_ in range(args.repeat):
        if round_:
            from django.db import connections

            connections.close_all()
        recreate_database(args.db)
        if round_ == 0:
            setup_django(args.db)
            from django.db import connection

            with connection.cursor() as cur:
                cur.execute("SHOW server_version")
                print(f"PostgreSQL {cur.fetchone()[0]}, database {args.db}; round {round_ + 1}")
        else:
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            print(f"round {round_ + 1}")
        best_csv = max(best_csv, timed_import(CSV_33K, "Chatbot Arena 33k CSV"))
        timed_import(CSV_33K, "  same file again (dedupe)")
        if round_ == 0:
            top = top_of_leaderboard()
            print("  leaderboard of the imported 33k votes (BT, sandwich 95% CI):")
            for i, r in enumerate(top, 1):
                print(
                    f"    {i}. {r['model']:<20} {r['rating']:7.1f}  [{r['lower']:.1f}, {r['upper']:.1f}]  "
                    f"{r['battles']:>5} battles"
                )
            got = [r["model"] for r in top[:4]]
            verdict = "matches" if got == EXPECTED_TOP4 else "DOES NOT match"
            print(f"  top four {verdict} LMArena mid-2023: {', '.join(EXPECTED_TOP4)}")
        best_big = max(best_big, timed_import(big, f"generated {args.battles:,} JSONL"))
        timed_import(big, "  same file again (dedupe)")
    print(
        f"best: 33k CSV {best_csv:,.0f} votes/s; {args.battles:,} JSONL {best_big:,.0f} votes/s "
        f"(target >= 20,000); load average now {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
