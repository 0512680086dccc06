"""A judge beside people on real data: MT-bench's 1,751 expert votes, judged
by a fake judge whose verdict is the longer answer, through the arena's own
code path, then agreement, kappa, position bias and rank correlation.

    .venv/bin/python bench/bench_judge.py [--answers /work/shared/data/answers/mt_bench]
        [--votes /work/shared/data/votes/mt-bench-human-votes-subset.jsonl]
        [--database sqlite:////tmp/arena-bench-judge/db.sqlite3 | postgres://…/scratch] [--rule longer]

Into a scratch database (a fresh SQLite file by default; a PostgreSQL URL is
dropped and created): ``import_answers`` of the MT-bench set (80 questions ×
31 models), one voter per expert, and for each expert vote a battle holding
the conversation that expert saw (both turns for a turn-2 vote, the first
for a turn-1 vote), voted through ``votes.services.vote_record``, the
function the vote API calls. Its after-commit hook queues the Celery task
``votes.judge_battle`` with ``apply_async``; Celery runs it EAGERLY here
(``task_always_eager``: the same task function a worker runs, in this
process), and the task calls the judge, a local OpenAI-compatible HTTP
server (tests/fake_judge.py) over httpx, in both orders. Then the human
recompute and the judge board are published as the worker publishes them,
and the figures are read back from the board.

The same figures are also computed straight from the file (longer total
assistant text wins; equal lengths tie) as a cross-check of the code path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_SQLITE = "sqlite:////tmp/arena-bench-judge/db.sqlite3"
WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}


def prepare(url: str) -> None:
    """bench_rotation's scratch database and in-process Django (DEBUG on, as a
    development run), with the judging's loggers quiet."""
    import bench_rotation

    bench_rotation.prepare(url, var_dir="/tmp/arena-bench-judge/var", quiet=("ratings", "httpx", "votes", "celery"))


def conversation(conv: list[dict], turns: int) -> list[dict]:
    users = [m["content"] for m in conv if m["role"] == "user"][:turns]
    answers = [m["content"] for m in conv if m["role"] == "assistant"][:turns]
    return users, answers


def direct_figures(rows: list[dict]) -> dict:
    """The longer-answer rule applied to the file itself, with the same formulas."""
    from ratings.judges import cohen_kappa, two_way_agreement

    pairs = []
    for r in rows:
        _, a = conversation(r["conversation_a"], r["turn"])
        _, b = conversation(r["conversation_b"], r["turn"])
        la, lb = sum(map(len, a)), sum(map(len, b))
        judged = "a" if la > lb else "b" if lb > la else "tie"
        pairs.append((WINNERS[r["winner"]], judged))
    agree, n2 = two_way_agreement(pairs)
    kappa, observed, n3 = cohen_kappa(pairs)
    return {"agreement": agree, "agreement_battles": n2, "kappa": kappa, "three_way_agreement": observed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answers", default="/work/shared/data/answers/mt_bench")
    ap.add_argument("--votes", default="/work/shared/data/votes/mt-bench-human-votes-subset.jsonl")
    ap.add_argument("--database", default=DEFAULT_SQLITE)
    ap.add_argument("--rule", default="longer", help="the fake judge's rule (tests/fake_judge.py)")
    ap.add_argument("--keep", action="store_true", help="keep a PostgreSQL scratch database")
    args = ap.parse_args(argv)
    prepare(args.database)
    try:
        from django.core.management import call_command
        from django.db.models import Count
        from django.utils import timezone

        from arena.celery import app
        from arena.models import ArenaModel, Battle, Judge, Question, Voter
        from ratings import judges
        from ratings.services import recompute_publish
        from tests.fake_judge import FakeJudge
        from votes.models import JudgeVote
        from votes.services import vote_record

        call_command("migrate", verbosity=0)
        call_command("import_answers", args.answers, verbosity=0)
        rows = [json.loads(line) for line in Path(args.votes).read_text().splitlines() if line.strip()]
        server = FakeJudge().start()
        Judge.objects.create(
            name=f"{args.rule}-answer", daily_budget=0, max_concurrency=0,
            provider_settings={"base_url": server.base_url, "model": args.rule, "timeout": 30},
        )  # fmt: skip
        app.conf.task_always_eager = True
        questions = {q.external_id: q for q in Question.objects.all()}
        models = {m.name: m for m in ArenaModel.objects.all()}
        voters: dict[str, Voter] = {}
        started = time.perf_counter()
        for r in rows:
            for name in (r["model_a"], r["model_b"]):
                if name not in models:  # vicuna-13b-v1.2 was judged by the experts but is not in the answer set
                    models[name] = ArenaModel.objects.create(name=name)
            voter = voters.get(r["judge"]) or voters.setdefault(r["judge"], Voter.objects.create(key=r["judge"]))
            prompts, answers_a = conversation(r["conversation_a"], r["turn"])
            _, answers_b = conversation(r["conversation_b"], r["turn"])
            turns = [{"prompt": p, "a": a, "b": b} for p, a, b in zip(prompts, answers_a, answers_b, strict=True)]
            battle = Battle.objects.create(
                voter=voter, model_a=models[r["model_a"]], model_b=models[r["model_b"]],
                question=questions.get(str(r["question_id"])), prompt=prompts[0], response_a=answers_a[0],
                response_b=answers_b[0], turns=turns, status=Battle.Status.READY, ready_at=timezone.now(),
            )  # fmt: skip
            vote_record(battle_id=battle.id, voter=voter, winner=WINNERS[r["winner"]])  # on commit: the judging
        judged_s = time.perf_counter() - started
        recompute_publish()
        judges.publish_boards()
        server.stop()
        board = judges.newest_board(Judge.objects.get().id)
        fig = board.agreement
        states = dict(JudgeVote.objects.values_list("status").annotate(n=Count("id")).order_by())
        direct = direct_figures(rows)
        print(f"votes: {len(rows)} expert votes on {len(rows)} battles, {len(voters)} experts")
        print(
            f"judge: fake '{args.rule}' answer endpoint, {sum(server.calls.values())} calls "
            f"(two orders per battle), judge votes by status {states}"
        )
        print("path: vote_record -> on_commit -> votes.judge_battle.apply_async (Celery eager) -> httpx -> fake judge")
        print(
            f"judging wall time: {judged_s:.1f} s ({len(rows) / judged_s:.0f} battles/s; load average {os.getloadavg()[0]:.1f})"
        )
        print(f"battles judged:            {fig['battles_judged']}")
        print(f"human votes compared:      {fig['both_voted']}")
        print(f"agreement (no ties):       {fig['agreement']:.4f} over {fig['agreement_battles']} battles")
        print(f"three-way agreement:       {fig['three_way_agreement']:.4f}")
        print(f"Cohen's kappa (A/B/tie):   {fig['kappa']:.4f} over {fig['kappa_battles']} battles")
        print(f"position-bias rate:        {fig['position_bias_rate']:.4f} over {fig['position_bias_battles']}")
        rho = fig["rank_correlation"]
        print(
            f"rank correlation (Spearman, judge board vs people's): "
            f"{'n/a' if rho is None else f'{rho:.4f}'} over {fig['rank_correlation_models']} models"
        )
        print(
            f"cross-check straight from the file: agreement {direct['agreement']:.4f} over "
            f"{direct['agreement_battles']}, three-way {direct['three_way_agreement']:.4f}, "
            f"kappa {direct['kappa']:.4f}"
        )
        same = (
            abs(direct["agreement"] - fig["agreement"]) < 1e-4
            and abs(direct["kappa"] - fig["kappa"]) < 1e-4
            and direct["agreement_battles"] == fig["agreement_battles"]
        )
        print("cross-check:", "equal" if same else "DIFFERENT")
        return 0 if same else 1
    finally:
        if args.database.startswith("postgres") and not args.keep:
            import bench_recompute
            from django.db import connections

            connections.close_all()
            bench_recompute.drop(args.database)


if __name__ == "__main__":
    sys.exit(main())
