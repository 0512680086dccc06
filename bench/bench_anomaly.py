#!/usr/bin/env python3
"""Recall and false-positive rate of the anomalous-voter detector over many
simulated arenas (pure numpy: votes.anomaly.detect on arrays, no database).

    .venv/bin/python bench/bench_anomaly.py [--seeds 50] [--adversary-votes 10 20 40 80] [--real]

Each arena: 12 models, 50 honest voters (noisy Bradley–Terry, personal taste
noise, ~30% ties, 30–120 votes each) and 3 adversaries (always A; always
against the leader; always for a weak model), from
tests/votes/test_anomaly.py:simulate_arena. Recall is per adversary kind;
the false-positive rate is flagged honest voters / honest voters tested.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.votes.test_anomaly import ADVERSARIES, simulate_arena  # noqa: E402
from votes import anomaly  # noqa: E402


def run(seeds: int, adversary_votes: int, **sim_kwargs) -> dict:
    caught = dict.fromkeys(ADVERSARIES, 0)
    fp = honest_tested = runs_with_fp = 0
    seconds = 0.0
    votes = 0
    for seed in range(seeds):
        sim = simulate_arena(seed, adversary_votes=adversary_votes, **sim_kwargs)
        t = time.perf_counter()
        det = anomaly.detect(sim.voter, sim.model_a, sim.model_b, sim.outcome, n_voters=sim.n_voters)
        seconds += time.perf_counter() - t
        votes += len(sim.voter)
        for kind, u in sim.adversaries.items():
            caught[kind] += bool(det.flagged[u]) if adversary_votes else 0
        flagged_honest = int(det.flagged[sim.honest].sum())
        fp += flagged_honest
        runs_with_fp += flagged_honest > 0
        honest_tested += int(det.tested[sim.honest].sum())
    return {
        "recall": {k: v / seeds for k, v in caught.items()},
        "fpr": fp / max(honest_tested, 1),
        "fp": fp,
        "honest_tested": honest_tested,
        "runs_with_fp": runs_with_fp,
        "ms_per_run": 1000 * seconds / seeds,
        "votes_per_run": votes / seeds,
    }


REAL_FILES = {  # ../shared/data: real human judges (a dev check; committed tests never read these)
    "MT-bench expert judgments (65 judges)": "mt-bench-human-votes-subset.jsonl",
    "Chatbot Arena 1,135 battles with judge ids": "chatbot-arena-1135-battles-with-prompts.jsonl",
    "GenAI-Arena 2024-02-20": "genai-arena-20240220/clean_battle.json",
}


def real_data() -> None:
    """The detector on real judges: how many would it flag?"""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("DEBUG", "true")  # a development run: DEBUG is off unless set
    import django

    django.setup()
    from votes.importers import BadRow, read_votes

    shared = os.path.join(os.path.dirname(ROOT), "shared", "data", "votes")
    for label, name in REAL_FILES.items():
        judges: dict[str, int] = {}
        models: dict[str, int] = {}
        rows = []
        for v in read_votes(os.path.join(shared, name)):
            if isinstance(v, BadRow) or v.reason:
                continue
            u = judges.setdefault(v.judge or "", len(judges))
            a = models.setdefault(v.model_a, len(models))
            b = models.setdefault(v.model_b, len(models))
            rows.append((u, a, b, anomaly.WINNER_OUTCOME[v.winner]))
        arr = np.array(rows)
        det = anomaly.detect(*arr.T, n_voters=len(judges))
        flagged = [j for j, i in judges.items() if det.flagged[i]]
        print(
            f"{label}: {len(rows):,} votes, {len(judges)} judges, {int(det.tested.sum())} tested "
            f"(>= {anomaly.MIN_VOTES} judged votes), {len(flagged)} flagged {flagged if flagged else ''}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--adversary-votes", type=int, nargs="+", default=[10, 20, 40, 80])
    ap.add_argument("--real", action="store_true", help="also run on the real judges in ../shared/data")
    args = ap.parse_args(argv)
    if args.real:
        real_data()
    print(
        f"detector: alpha={anomaly.ALPHA} (Holm), min_votes={anomaly.MIN_VOTES}, "
        f"min_pair_consensus={anomaly.MIN_PAIR_CONSENSUS}, prior_strength={anomaly.PRIOR_STRENGTH}; "
        f"{args.seeds} seeds per row"
    )
    print(
        f"{'adv. votes':>10}  {'always_a':>8}  {'vs_leader':>9}  {'for_weak':>8}  {'FPR':>9}  "
        f"{'FP/tested':>11}  {'runs w/ FP':>10}  {'ms/run':>7}"
    )
    for n in args.adversary_votes:
        r = run(args.seeds, n)
        rec = r["recall"]
        print(
            f"{n:>10}  {rec['always_a']:>8.0%}  {rec['against_leader']:>9.0%}  {rec['for_weak_model']:>8.0%}  "
            f"{r['fpr']:>9.2%}  {r['fp']:>4}/{r['honest_tested']:<6}  {r['runs_with_fp']:>10}  "
            f"{r['ms_per_run']:>7.0f}"
        )
    # honest-only arenas, and a harder one: more votes per honest voter, stronger personal taste
    for label, kw in (("honest only", {"adversary_votes": 0}),
                      ("honest only, 100-400 votes, taste sd 0.5",
                       {"adversary_votes": 0, "honest_votes": (100, 400), "taste_sd": 0.5})):  # fmt: skip
        r = run(args.seeds, **kw)
        print(
            f"{label}: FPR {r['fpr']:.2%} ({r['fp']}/{r['honest_tested']} honest voters flagged; "
            f"{r['runs_with_fp']} of {args.seeds} runs with any), {r['ms_per_run']:.0f} ms/run "
            f"({r['votes_per_run']:,.0f} votes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
