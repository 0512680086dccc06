#!/usr/bin/env python3
"""Personal leaderboards: which prior strength predicts a voter's own held-out
votes best, against the global ranking and the voter's unshrunk fit; and speed.

    .venv/bin/python bench/bench_personal.py

The crowd: ``--models`` strengths g ~ N(0, 1) (natural-log units), taken as
known (the global board rests on far more votes than any one voter's), and a
lognormal popularity per model, so pairs are skewed as in the arena. A voter's
own strengths are g + delta, delta_i ~ N(0, s^2): s = 0.25, 0.5, 1.0 are tastes
that differ from the crowd's a little, clearly, a lot. Each voter casts n votes
(20, 50, 200, 1,000), 20% ties (half a win, as in the global ratings), the
rest Bradley–Terry on their own strengths. Each voter's votes are split in 5
folds; every held-out vote between two models the voter met in training is
predicted by:

- global: the crowd's g;
- unshrunk: the engine's Bradley–Terry fit of the voter's training votes
  (a weak penalty only when the maximum-likelihood estimate does not exist);
- shrunk(sd): ratings.personal.fit_personal with prior sd ``sd``.

Score: mean held-out cross-entropy (a tie is half a win; lower is better),
averaged over voters in each (s, n) cell. Then the time for one voter with
1,000 votes over ``--timing-models`` models (aggregate, fit, intervals, rows).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings import engine as E
from ratings import personal as P

GRID = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)
TASTES = (0.25, 0.5, 1.0)
COUNTS = (20, 50, 200, 1000)


def voter_votes(g, probs, lo, hi, s, n, rng):
    own = g + rng.normal(0.0, s, len(g))
    k = rng.choice(len(lo), size=n, p=probs)
    flip = rng.random(n) < 0.5
    a = np.where(flip, hi[k], lo[k])
    b = np.where(flip, lo[k], hi[k])
    y = (rng.random(n) < E.sigmoid(own[a] - own[b])).astype(float)
    y[rng.random(n) < 0.2] = 0.5
    return a, b, y


def unshrunk_theta(a, b, y, n_models):
    lb = E.leaderboard(E.aggregate(a, b, y, n_models), ci="none")
    return lb.theta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--voters", type=int, default=30, help="voters per (taste, votes) cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-models", type=int, default=200)
    opts = ap.parse_args(argv)
    rng = np.random.default_rng(opts.seed)
    g = rng.normal(0.0, 1.0, opts.models)
    g -= g.mean()
    pop = rng.lognormal(0.0, 1.0, opts.models)
    lo, hi = np.triu_indices(opts.models, 1)
    probs = pop[lo] * pop[hi]
    probs /= probs.sum()

    methods = ["global", "unshrunk", *[f"sd {sd}" for sd in GRID]]
    table: dict[tuple[float, int], np.ndarray] = {}
    t0 = time.perf_counter()
    for s in TASTES:
        for n in COUNTS:
            scores = np.zeros((opts.voters, len(methods)))
            for v in range(opts.voters):
                a, b, y = voter_votes(g, probs, lo, hi, s, n, rng)
                fold = rng.permutation(n) % 5
                loss = np.zeros(len(methods))
                used = 0
                for k in range(5):
                    tr, te = fold != k, fold == k
                    met = np.zeros(opts.models, dtype=bool)
                    met[a[tr]] = met[b[tr]] = True
                    te &= met[a] & met[b]
                    if not te.any():
                        continue
                    thetas = [g, unshrunk_theta(a[tr], b[tr], y[tr], opts.models)]
                    for sd in GRID:
                        fit = P.fit_personal(a[tr], b[tr], y[tr], g, prior_sd=sd)
                        thetas.append(P.full_theta(fit, g))
                    for j, th in enumerate(thetas):
                        loss[j] += P.held_out_log_loss(th, a[te], b[te], y[te]) * te.sum()
                    used += int(te.sum())
                scores[v] = loss / max(used, 1)
            table[(s, n)] = scores.mean(axis=0)
    mean = np.mean(list(table.values()), axis=0)
    best = int(np.argmin(mean[2:])) + 2
    chosen = methods.index(f"sd {P.PRIOR_SD}")
    print(
        f"# {opts.models} models, {opts.voters} voters per cell, 5-fold; seed {opts.seed}; "
        f"{time.perf_counter() - t0:.0f} s"
    )
    print("held-out cross-entropy per vote (lower is better)")
    print(f"{'taste sd':>8} {'votes':>6}" + "".join(f"{m:>10}" for m in methods))
    wins = 0
    for (s, n), row in table.items():
        mark = "".join(f"{x:>10.4f}" for x in row)
        ok = row[chosen] < row[0] and row[chosen] < row[1]
        wins += ok
        print(f"{s:>8} {n:>6}{mark}   {'shrunk best of three' if ok else 'NOT better than both'}")
    print(f"{'mean':>15}" + "".join(f"{x:>10.4f}" for x in mean))
    print(
        f"best prior sd on average: {methods[best]}; in use (ratings.personal.PRIOR_SD): {P.PRIOR_SD} "
        f"= {P.prior_sd_points():.0f} rating points; shrunk beats global and unshrunk in {wins}/{len(table)} cells"
    )

    # speed: one voter, 1,000 votes, many models
    m = opts.timing_models
    gt = rng.normal(0.0, 1.0, m)
    pop = rng.lognormal(0.0, 1.0, m)
    lo, hi = np.triu_indices(m, 1)
    pr = pop[lo] * pop[hi]
    pr /= pr.sum()
    a, b, y = voter_votes(gt, pr, lo, hi, 0.5, 1000, rng)
    names = [f"model-{i:03d}" for i in range(m)]
    rating = E.theta_to_points(gt)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        fit = P.fit_personal(a, b, y, gt)
        P.board(fit, rating, names)
        times.append(time.perf_counter() - t)
    print(
        f"one voter, 1,000 votes over {len(fit.models)} of {m} models: median {1000 * np.median(times):.1f} ms, "
        f"max {1000 * max(times):.1f} ms (target < 50 ms) {'PASS' if np.median(times) < 0.05 else 'FAIL'}"
    )
    return 0 if math.isfinite(mean[chosen]) else 1


if __name__ == "__main__":
    sys.exit(main())
