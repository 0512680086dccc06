"""How many votes each pair-sampling policy needs until every model's 95%
interval is narrower than a target width.

Simulated voters with hidden true strengths vote on the pairs a policy picks
(noisy Bradley–Terry, ~30% ties); every batch the engine refits and the policy
sees the new ratings (as the live arena sees the newest snapshot).
The policies are the arena's own (arena/sampling.py).

    .venv/bin/python bench/bench_sampling.py [--models 12] [--target 60] [--seeds 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arena import sampling  # noqa: E402  (pure module; importing arena/ starts no Django)
from ratings import engine  # noqa: E402


def outcome(strengths: np.ndarray, i: int, j: int, nrng: np.random.Generator) -> float:
    """A simulated voter: 30% ties, otherwise Bradley–Terry on the hidden strengths."""
    if nrng.random() < 0.3:
        return 0.5
    p = 1.0 / (1.0 + np.exp(-(strengths[i] - strengths[j])))
    return 1.0 if nrng.random() < p else 0.0


def simulate(
    policy: str,
    strengths: np.ndarray,
    target: float,
    seed: int,
    batch: int,
    max_votes: int,
    *,
    established: int = 0,
    history: int = 0,
) -> int:
    """Votes cast under ``policy`` until every interval is below ``target``.

    With ``established`` > 0, the first ``established`` models already have
    ``history`` votes among themselves (uniform pairs) when the rest join;
    those votes are not counted.
    """
    n = len(strengths)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    a_idx: list[int] = []
    b_idx: list[int] = []
    ys: list[float] = []
    counts: dict[tuple[int, int], float] = {}
    for _ in range(history if established >= 2 else 0):
        i, j = rng.sample(range(established), 2)
        counts[(min(i, j), max(i, j))] = counts.get((min(i, j), max(i, j)), 0.0) + 1
        a_idx.append(i)
        b_idx.append(j)
        ys.append(outcome(strengths, i, j, nrng))
    start = len(ys)
    theta = [0.0] * n
    if start:
        old = engine.leaderboard(engine.aggregate(np.array(a_idx), np.array(b_idx), np.array(ys), n))
        theta = list(old.theta)
    # FastChat's weighted rule: equal weights, new models boosted.
    weights = [1.0 if k < established else sampling.NEW_MODEL_BOOST if established else 1.0 for k in range(n)]
    while len(ys) - start < max_votes:
        for _ in range(batch):
            i, j = sampling.pick_pair(policy, n, rng, weights=weights, theta=theta, counts=counts)
            if rng.random() < 0.5:
                i, j = j, i
            key = (min(i, j), max(i, j))
            counts[key] = counts.get(key, 0.0) + 1
            a_idx.append(i)
            b_idx.append(j)
            ys.append(outcome(strengths, i, j, nrng))
        pc = engine.aggregate(np.array(a_idx), np.array(b_idx), np.array(ys), n)
        lb = engine.leaderboard(pc)
        if not lb.active.all():
            continue
        width = lb.upper - lb.lower
        if width.max() < target and not lb.warnings:
            return len(ys) - start
        theta = list(lb.theta)
    return max_votes


def run_scenario(title: str, args, *, established: int, history: int) -> None:
    print(f"\n## {title}")
    results: dict[str, list[int]] = {p: [] for p in ("uniform", "weighted", "active")}
    for seed in range(args.seeds):
        strengths = np.random.default_rng(1000 + seed).normal(0.0, args.spread, args.models)
        for policy in results:
            results[policy].append(
                simulate(
                    policy,
                    strengths,
                    args.target,
                    seed,
                    args.batch,
                    args.max_votes,
                    established=established,
                    history=history,
                )
            )
    print(f"{'policy':<10} {'median votes':>13} {'mean':>9}   per seed")
    for policy, votes in results.items():
        print(f"{policy:<10} {statistics.median(votes):>13,.0f} {statistics.mean(votes):>9,.0f}   {votes}")
    ratio = statistics.mean(results["uniform"]) / statistics.mean(results["active"])
    per_seed = [u / a for u, a in zip(results["uniform"], results["active"], strict=True)]
    print(
        f"uniform needs {100 * (ratio - 1):.0f}% more votes than active on average "
        f"(per seed {min(per_seed):.2f}x-{max(per_seed):.2f}x); active needs fewer on "
        f"{sum(r > 1 for r in per_seed)}/{len(per_seed)} seeds"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--target", type=float, default=60.0, help="95%% interval width, rating points")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--spread", type=float, default=0.8, help="sd of true strengths, natural-log units")
    ap.add_argument("--batch", type=int, default=50, help="votes between refits")
    ap.add_argument("--new", type=int, default=4, help="models joining an established arena")
    ap.add_argument("--history", type=int, default=6000, help="votes the established models already have")
    ap.add_argument("--max-votes", type=int, default=200_000)
    args = ap.parse_args(argv)
    print(
        f"# pair sampling: {args.models} models (true strengths sd {args.spread}), target: every 95% CI "
        f"narrower than {args.target} points, {args.seeds} seeds, refit every {args.batch} votes"
    )
    print("# the paper reports 54% more votes for random pairing than for active sampling")
    started = time.perf_counter()
    run_scenario("cold start: all models new", args, established=0, history=0)
    run_scenario(
        f"{args.new} new models join {args.models - args.new} established ones ({args.history:,} votes of history)",
        args,
        established=args.models - args.new,
        history=args.history,
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
