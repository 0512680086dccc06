#!/usr/bin/env python3
"""Coverage of marginal and simultaneous 95% intervals on generated data.

    .venv/bin/python bench/bench_coverage.py                      # 200 replicates, BT data
    .venv/bin/python bench/bench_coverage.py --ties 0.3           # data with 30% ties: half vs Davidson

One configuration (fixed by ``--seed``): ``--models`` strengths theta ~ N(0, 1)
in natural-log units and a lognormal popularity per model; each replicate draws
``--battles`` battles over pairs with P(pair a, b) ∝ pop_a · pop_b (a skewed
pair distribution: the most-shown pair is hundreds of times more frequent than
the least), and outcomes from Bradley–Terry (or, with ``--ties``, from Davidson's
model with nu set so that about that share of battles between equals... see
below). Each replicate is fitted with the sandwich and the bootstrap, marginal
and simultaneous, and we count:

- per-model coverage: the share of (replicate, model) with the generating
  (centred) strength inside its interval;
- joint coverage: the share of replicates with every model inside at once.

Marginal intervals should cover each model 95% of the time; simultaneous ones
all models at once 95% of the time. Monte Carlo error of a share p over R
replicates: sqrt(p (1 - p) / R), 1.5 points at R = 200.

With ``--ties T`` the data come from Davidson's model with nu chosen so that
a battle between equal models is a tie with probability T (nu = 2T / (1 - T)),
and both tie treatments are scored against the generating strengths.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings import davidson as D
from ratings import engine as E


def configuration(n_models: int, seed: int):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, n_models)
    theta -= theta.mean()
    pop = rng.lognormal(0.0, 1.0, n_models)
    lo, hi = np.triu_indices(n_models, 1)
    probs = pop[lo] * pop[hi]
    return theta, lo, hi, probs / probs.sum()


def replicate(theta, lo, hi, probs, n_battles, rng, tie_share):
    """One data set as PairCounts: battles per pair, then outcomes."""
    n = len(theta)
    n_pair = rng.multinomial(n_battles, probs)
    d = theta[lo] - theta[hi]
    if tie_share > 0:
        nu = 2 * tie_share / (1 - tie_share)
        pw, pt, pl, _ = D.probabilities(d, math.log(nu))
        out = np.array([rng.multinomial(k, [w, t, 1 - w - t]) for k, w, t in zip(n_pair, pw, pt, strict=True)])
        wins, ties, losses = out[:, 0], out[:, 1], out[:, 2]
    else:
        wins = rng.binomial(n_pair, E.sigmoid(d))
        ties = np.zeros_like(wins)
        losses = n_pair - wins
    a = np.concatenate([lo, lo, lo])
    b = np.concatenate([hi, hi, hi])
    y = np.concatenate([np.ones(len(lo)), np.full(len(lo), 0.5), np.zeros(len(lo))])
    c = np.concatenate([wins, ties, losses]).astype(float)
    keep = c > 0
    return E.from_rows(a[keep], b[keep], y[keep], c[keep], n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--battles", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=100, help="bootstrap rounds per replicate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ties", type=float, default=0.0, help="tie share between equals (Davidson data); 0: pure BT")
    ap.add_argument("--no-bootstrap", action="store_true")
    opts = ap.parse_args(argv)

    theta, lo, hi, probs = configuration(opts.models, opts.seed)
    truth = E.theta_to_points(theta)
    methods = [("sandwich", "half")] + ([] if opts.no_bootstrap else [("bootstrap", "half")])
    if opts.ties > 0:
        methods += [("sandwich", "davidson")] + ([] if opts.no_bootstrap else [("bootstrap", "davidson")])
    seeds = np.random.SeedSequence(opts.seed + 1).spawn(opts.replicates)
    per_model = {(m, t, k): [] for m, t in methods for k in ("marginal", "simultaneous")}
    joint = {key: [] for key in per_model}
    crit = {(m, t): [] for m, t in methods}
    skew = probs.max() / probs.min()
    print(
        f"# {opts.replicates} replicates, {opts.models} models, {opts.battles:,} battles, "
        f"pair frequency max/min = {skew:.0f}, bootstrap rounds {opts.rounds}, "
        f"{'BT data' if not opts.ties else f'Davidson data, {opts.ties:.0%} ties between equals'}"
    )
    t0 = time.perf_counter()
    for r, ss in enumerate(seeds):
        pc = replicate(theta, lo, hi, probs, opts.battles, np.random.default_rng(ss), opts.ties)
        for ci, ties in methods:
            lb = E.leaderboard(pc, ci=ci, rounds=opts.rounds, seed=r, simultaneous=True, ties=ties)
            # the ratings are centred on the models' mean, like the truth
            for kind, low, up in (("marginal", lb.lower, lb.upper), ("simultaneous", lb.sim_lower, lb.sim_upper)):
                inside = (low <= truth) & (truth <= up)
                per_model[(ci, ties, kind)].append(inside.mean())
                joint[(ci, ties, kind)].append(inside.all())
            crit[(ci, ties)].append(lb.critical_value)
        if (r + 1) % 20 == 0:
            print(f"  {r + 1} replicates, {time.perf_counter() - t0:.0f} s", flush=True)

    R = opts.replicates
    mc = math.sqrt(0.95 * 0.05 / R)
    print(
        f"\nMonte Carlo standard error at 95%: {100 * mc:.2f} points (joint); per-model shares pool "
        f"{R * opts.models} model-replicates but are correlated within a replicate"
    )
    print(f"{'intervals':<40}{'per-model':>10}{'joint':>8}{'crit. value':>13}")
    ok = True
    for (ci, ties, kind), vals in per_model.items():
        pm, jt = 100 * np.mean(vals), 100 * np.mean(joint[(ci, ties, kind)])
        cv = np.mean(crit[(ci, ties)]) if kind == "simultaneous" else E.Z95
        label = f"{ci}, ties {ties}, {kind}"
        verdict = ""
        if ties == "davidson" or not opts.ties:
            if kind == "simultaneous":
                good = abs(jt - 95) <= 100 * 2 * mc
                verdict = f"joint {'PASS' if good else 'FAIL'} (95 ± {200 * mc:.1f})"
            else:
                good = abs(pm - 95) <= 1.5
                verdict = f"per-model {'PASS' if good else 'FAIL'} (95 ± 1.5)"
            ok &= good
        print(f"{label:<40}{pm:>9.1f}%{jt:>7.1f}%{cv:>13.3f}   {verdict}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
