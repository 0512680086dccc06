#!/usr/bin/env python3
"""Held-out log-loss of Davidson's tie model against ties-as-half, 5-fold.

    .venv/bin/python bench/bench_ties.py [/work/shared/data/votes/chatbot-arena-33k-human-votes.csv]

The file: CSV with model_a, model_b, winner (model_a, model_b, tie,
tie (bothbad)); both kinds of tie are ties. Battles are shuffled with a fixed
seed and split into 5 folds; each fold is predicted by the two models fitted
on the other four. Scores, mean per held-out battle (lower is better):

- three-way log-loss: -log P(observed outcome among a wins / tie / b wins).
  Davidson predicts the three directly. Ties-as-half Bradley–Terry has no tie
  probability, so it gets the most charitable one: the training folds' tie
  share, constant, with the rest split by sigmoid(theta_a - theta_b).
- ties-as-half cross-entropy: -(y log p + (1 - y) log(1 - p)) with y = 1, 1/2, 0,
  the loss Bradley–Terry with half-wins minimises; Davidson's p is
  P(a wins) + P(tie) / 2.
- decisive battles only: -log P(winner | not a tie); sigmoid(d) for both.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratings import davidson as D
from ratings import engine as E

DEFAULT = "/work/shared/data/votes/chatbot-arena-33k-human-votes.csv"
SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def read(path):
    names: dict[str, int] = {}
    a, b, y = [], [], []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            a.append(names.setdefault(row["model_a"], len(names)))
            b.append(names.setdefault(row["model_b"], len(names)))
            y.append(SCORE[row["winner"]])
    return list(names), np.array(a), np.array(b), np.array(y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", default=DEFAULT)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    opts = ap.parse_args(argv)
    names, a, b, y = read(opts.file)
    keep = a != b
    a, b, y = a[keep], b[keep], y[keep]
    n, m = len(names), len(a)
    fold = np.random.default_rng(opts.seed).permutation(m) % opts.folds
    print(
        f"# {opts.file}: {m:,} battles, {n} models, ties {np.mean(y == 0.5):.1%}; {opts.folds}-fold, seed {opts.seed}"
    )
    sums = {k: np.zeros(2) for k in ("three-way", "half", "decisive")}
    counts = {k: 0 for k in sums}
    nus = []
    for k in range(opts.folds):
        tr, te = fold != k, fold == k
        pc = E.aggregate(a[tr], b[tr], y[tr], n)
        bt = E.leaderboard(pc, ci="none")
        dav = E.leaderboard(pc, ci="none", ties="davidson")
        kappa = math.log(dav.tie_param["nu"])
        nus.append(dav.tie_param["nu"])
        tie_rate = float(np.mean(y[tr] == 0.5))
        at, bt_, yt = a[te], b[te], y[te]
        # three-way
        p_bt = E.sigmoid(bt.theta[at] - bt.theta[bt_])
        prob_bt = np.where(yt == 0.5, tie_rate, (1 - tie_rate) * np.where(yt == 1.0, p_bt, 1 - p_bt))
        pw, pt, pl, _ = D.probabilities(dav.theta[at] - dav.theta[bt_], kappa)
        prob_dav = np.where(yt == 0.5, pt, np.where(yt == 1.0, pw, pl))
        sums["three-way"] += [-np.log(prob_bt).sum(), -np.log(prob_dav).sum()]
        counts["three-way"] += len(yt)
        # ties-as-half cross-entropy
        q_dav = pw + 0.5 * pt
        for j, q in enumerate((p_bt, q_dav)):
            sums["half"][j] += -(yt * np.log(q) + (1 - yt) * np.log(1 - q)).sum()
        counts["half"] += len(yt)
        # decisive only
        dec = yt != 0.5
        for j, th in enumerate((bt.theta, dav.theta)):
            p = E.sigmoid(th[at[dec]] - th[bt_[dec]])
            sums["decisive"][j] += -np.log(np.where(yt[dec] == 1.0, p, 1 - p)).sum()
        counts["decisive"] += int(dec.sum())
    print(f"Davidson nu per fold: {', '.join(f'{v:.4f}' for v in nus)}")
    print(f"{'held-out log-loss per battle':<40}{'ties-as-half':>14}{'Davidson':>11}{'difference':>12}")
    labels = {
        "three-way": "three-way (a / tie / b)",
        "half": "ties-as-half cross-entropy",
        "decisive": "decisive battles, winner",
    }
    for key, label in labels.items():
        h, d = sums[key] / counts[key]
        print(f"{label + f' ({counts[key]:,})':<40}{h:>14.5f}{d:>11.5f}{d - h:>+12.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
