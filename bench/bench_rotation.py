"""One voter against the real MT-bench answer set: the question rotation, how
long the arena can keep every shown answer anonymous, and how long an open takes.

    .venv/bin/python bench/bench_rotation.py [--answers /work/shared/data/answers/mt_bench]
        [--database sqlite:////tmp/arena-bench-rotation/db.sqlite3 | postgres://…/scratch]
        [--voters 1] [--policy weighted] [--seed 0]

Imports the 80 questions × 31 models with ``import_answers`` into a scratch
database (a fresh SQLite file by default; a PostgreSQL URL is dropped and
created), then lets each voter open and vote (through the same services the
API calls: battle_create, vote_record) until the arena answers
``nothing_left_to_show``. Checks on the way that no battle shows an answer
whose model was revealed to that voter, and prints: the votes before the
first repeated question (expected: 80, every question once), the votes
before nothing is left (expected: 80 × ⌊31/2⌋ = 1,200) and the per-open
latency (median and 95th percentile, for the first 80 opens and the last 80,
when the voter's history is longest). A snapshot is published every
--recompute-every votes, as the worker does, so models leave the new-model
boost and its look-up as they collect battles.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_SQLITE = "sqlite:////tmp/arena-bench-rotation/db.sqlite3"


def prepare(url: str, *, var_dir: str = "/tmp/arena-bench-rotation/var", quiet: tuple[str, ...] = ("ratings",)) -> None:
    """A fresh scratch database (PostgreSQL through bench_recompute, or a new
    SQLite file), Django set up for an in-process development run, and the
    loggers in ``quiet`` turned down to warnings. Also bench_judge's."""
    if url.startswith("postgres"):
        import bench_recompute

        bench_recompute.recreate(url)
    else:
        path = Path(url.removeprefix("sqlite:///"))
        shutil.rmtree(path.parent, ignore_errors=True)
        path.parent.mkdir(parents=True)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("DEBUG", "true")  # a development run: DEBUG is off unless set
    os.environ.setdefault("ARENA_VAR_DIR", var_dir)
    os.environ["ARENA_DAILY_VOTE_CAP"] = "0"  # one voter (or one expert) votes well over the default 1,000 a day
    os.environ.pop("REDIS_URL", None)  # votes queue recomputes; keep them off the shared Redis
    os.environ.pop("REDIS_CACHE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    for name in quiet:  # one line per snapshot (or per judging) would drown the figures
        logging.getLogger(name).setLevel(logging.WARNING)


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def run_voter(rng: random.Random, recompute_every: int) -> dict:
    from arena.models import Answer, Voter
    from arena.services import NothingLeftToShow, battle_create
    from ratings.services import recompute_publish
    from votes.services import vote_record

    voter = Voter.objects.create(key=f"bench-{rng.random()}")
    revealed: set[tuple[int, int]] = set()
    seen: set[int] = set()
    first_repeat = None
    timings: list[float] = []
    votes = 0
    while True:
        started = time.perf_counter()
        try:
            battle = battle_create(voter=voter, rng=rng)
        except NothingLeftToShow:
            timings.append(time.perf_counter() - started)
            break
        timings.append(time.perf_counter() - started)
        q = battle.question_id
        if first_repeat is None and q in seen:
            first_repeat = votes
        seen.add(q)
        shown = {(q, battle.model_a_id), (q, battle.model_b_id)}
        if shown & revealed:
            raise SystemExit(f"battle {votes + 1} shows an answer whose model this voter knows: {shown & revealed}")
        # The battle carries the answers the two models wrote, every turn of them.
        texts = dict(Answer.objects.filter(question_id=q).values_list("model_id", "turns"))
        assert [t["a"] for t in battle.turns] == texts[battle.model_a_id][: len(battle.turns)]
        vote_record(battle_id=battle.id, voter=voter, winner=rng.choice(["a", "b", "tie", "both_bad"]))
        revealed |= shown
        votes += 1
        if recompute_every and votes % recompute_every == 0:
            recompute_publish()  # as the worker would: the boost reads the newest snapshot
    return {"first_repeat": first_repeat, "votes": votes, "timings": timings}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answers", default="/work/shared/data/answers/mt_bench")
    ap.add_argument("--database", default=DEFAULT_SQLITE)
    ap.add_argument("--voters", type=int, default=1)
    ap.add_argument("--policy", default="weighted", choices=["weighted", "uniform", "active"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--recompute-every",
        type=int,
        default=50,
        help="publish a snapshot every N votes, as the worker does after votes (0 = never)",
    )
    ap.add_argument("--keep", action="store_true", help="keep a PostgreSQL scratch database")
    args = ap.parse_args(argv)
    os.environ["ARENA_SAMPLING_POLICY"] = args.policy
    prepare(args.database)
    try:
        from django.core.management import call_command
        from django.db import connection

        from arena.models import Answer, ArenaModel, Question

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        call_command("import_answers", args.answers, verbosity=0)
        n_q, n_m = Question.objects.count(), ArenaModel.objects.count()
        two_turn = sum(1 for t in Question.objects.values_list("turns", flat=True) if len(t) > 1)
        print(
            f"# rotation benchmark: {connection.vendor}, policy {args.policy}, a snapshot every "
            f"{args.recompute_every} votes, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"imported {n_q} questions ({two_turn} with two turns) × {n_m} models, "
            f"{Answer.objects.count():,} answers in {time.perf_counter() - started:.1f} s"
        )
        rng = random.Random(args.seed)
        for v in range(args.voters):
            result = run_voter(rng, args.recompute_every)
            t = result["timings"]
            print(
                f"voter {v + 1}: {result['first_repeat']} votes before a question repeats "
                f"(expected {n_q}); {result['votes']:,} votes before nothing unrevealed is left "
                f"(expected {n_q * (n_m // 2):,}); no shown answer had a revealed model"
            )
            print(
                f"  per open: first {n_q} opens {ms(t[:n_q])}; last {n_q} opens {ms(t[-n_q:])}; all {len(t):,} {ms(t)}"
            )
    finally:
        if args.database.startswith("postgres") and not args.keep:
            from django.db import connections

            connections.close_all()
            import bench_recompute

            bench_recompute.drop(args.database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
