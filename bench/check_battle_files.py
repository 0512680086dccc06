#!/usr/bin/env python3
"""Both commands on every real battle file: do they accept it and agree?

    .venv/bin/python bench/check_battle_files.py [--database postgres://postgres@127.0.0.1:5432/arena_files_check]

For each file under ../shared/data/votes (the Chatbot Arena CSV and JSONL, the
MT-bench human votes, GenAI-Arena, every MTEB-Arena clean_results file, and the
baseball CSV, which is no battle file): ``rate_battles FILE`` (BT, no
intervals) against ``import_battles FILE`` into a scratch PostgreSQL database
(created and dropped here; votes deleted between files), then
``export_battles`` and ``rate_battles`` on the export. Prints one line per file:
rows, counted battles and skips in both, and the largest rating difference.
Reads ../shared/data, which the committed tests never do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recompute import ROOT, drop, recreate, setup_django

# ../shared/data beside the checkout (a worktree sits one level deeper)
SHARED = next((p / "shared" / "data" / "votes" for p in ROOT.parents if (p / "shared" / "data" / "votes").is_dir()),
              ROOT.parent / "shared" / "data" / "votes")  # fmt: skip


def rate(path) -> dict | str:
    from ratings import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(path), "--ci", "none", "--format", "json"])
    return json.loads(out.getvalue()) if code == 0 else err.getvalue().strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_files_check")
    args = ap.parse_args(argv)
    files = sorted(
        p for p in SHARED.rglob("*") if p.suffix in (".json", ".jsonl", ".csv") and "leaderboard" not in p.name
    )
    recreate(args.database)
    failures = 0
    try:
        setup_django(args.database)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from votes.importers import ImportFailed, import_files
        from votes.models import Vote

        print(f"{'file':<58} {'rows':>6} {'rated':>6} {'import':>6} {'skips rate / import':<44} {'max Δ':>7}")
        for path in files:
            name = str(path.relative_to(SHARED))
            direct = rate(path)
            Vote.objects.all().delete()
            try:
                stats = import_files([path], progress=False)
            except ImportFailed as exc:
                stats = str(exc).splitlines()[0]
            if isinstance(direct, str) or isinstance(stats, str):
                agree = isinstance(direct, str) and isinstance(stats, str)
                failures += not agree
                print(
                    f"{name:<58} refused by {'both' if agree else 'ONE'}: {direct if isinstance(direct, str) else stats}"[
                        :200
                    ]
                )
                continue
            with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
                call_command("export_battles", output=tmp.name, stdout=io.StringIO(), stderr=io.StringIO())
                again = rate(tmp.name)
            counted = Vote.objects.filter(excluded=False).count()
            a = {m["model"]: m for m in direct["models"]}
            b = {m["model"]: m for m in again["models"]} if isinstance(again, dict) else {}
            same_board = a.keys() == b.keys() and all(
                (a[k]["battles"], a[k]["wins"], a[k]["ties"]) == (b[k]["battles"], b[k]["wins"], b[k]["ties"])
                for k in a
            )
            delta = max((abs(a[k]["rating"] - b[k]["rating"]) for k in a if k in b), default=0.0)
            sk = {k: v for k, v in direct["battles_skipped"].items() if v}
            si = {k: v for k, v in stats.skipped.items() if v}
            ok = direct["battles_used"] == counted == again["battles_used"] and sk == si and same_board and delta < 1e-3
            failures += not ok
            print(
                f"{name:<58} {stats.rows + stats.bad_count:>6} {direct['battles_used']:>6} {counted:>6} "
                f"{json.dumps(sk) + ' / ' + json.dumps(si):<44} {delta:>7.4f}{'' if ok else '  DISAGREE'}"
            )
    finally:
        from django.db import connections

        connections.close_all()
        drop(args.database)
    print(f"{len(files)} files, {failures} disagreement(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
