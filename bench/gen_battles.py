#!/usr/bin/env python3
"""Synthetic arena battles for benchmarks (stdlib + numpy only).

    python bench/gen_battles.py --battles 1000000 --models 200 --seed 0 --out /tmp/b.csv

Model i (named ``model-000`` ...) has a hidden strength theta_i ~ N(0, sd) in
natural-log units and a popularity drawn from a lognormal, so pair frequencies
are skewed: P(pair a, b) ∝ pop_a * pop_b (a != b), sides in random order.
Each battle is a tie with probability ``--tie-rate`` (a share ``--bothbad``
of those labelled ``tie (bothbad)``), otherwise model a wins with probability
sigmoid(theta_a - theta_b). ``--self-battles N`` adds N battles of a model with
itself (they carry no information; the engine must drop and count them).

Formats: ``csv`` (model_a,model_b,winner) or ``jsonl`` (LMArena clean_battle
records with ``anony`` and an increasing ``tstamp``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

LABELS = np.array(["model_a", "model_b", "tie", "tie (bothbad)"], dtype=object)


def model_names(n_models: int) -> list[str]:
    width = max(3, len(str(n_models - 1)))
    return [f"model-{i:0{width}d}" for i in range(n_models)]


def generate(
    n_battles: int,
    n_models: int,
    seed: int = 0,
    strength_sd: float = 1.0,
    popularity_sigma: float = 1.0,
    tie_rate: float = 0.3,
    bothbad_share: float = 0.3,
    self_battles: int = 0,
):
    """Return (names, theta, a, b, label_idx) as numpy arrays.

    ``label_idx`` indexes LABELS: 0 model_a won, 1 model_b won, 2 tie,
    3 tie (bothbad). Self-battles (if any) are appended at random positions.
    """
    if n_models < 2:
        raise ValueError("need at least 2 models")
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, strength_sd, n_models)
    pop = rng.lognormal(0.0, popularity_sigma, n_models)
    p = pop / pop.sum()

    n_pair = n_battles - self_battles
    if n_pair < 0:
        raise ValueError("--self-battles exceeds --battles")
    # Both sides drawn ∝ popularity; redraw the (few) accidental self-pairs.
    a = rng.choice(n_models, size=n_pair, p=p)
    b = rng.choice(n_models, size=n_pair, p=p)
    same = np.flatnonzero(a == b)
    while same.size:
        b[same] = rng.choice(n_models, size=same.size, p=p)
        same = same[a[same] == b[same]]

    diff = theta[a] - theta[b]
    p_a = 1.0 / (1.0 + np.exp(-diff))
    u = rng.random(n_pair)
    label = np.where(rng.random(n_pair) < p_a, 0, 1).astype(np.int8)
    tie = u < tie_rate
    bothbad = u < tie_rate * bothbad_share
    label[tie] = 2
    label[bothbad] = 3

    if self_battles:
        s = rng.choice(n_models, size=self_battles, p=p)
        s_label = rng.integers(0, 4, size=self_battles).astype(np.int8)
        pos = np.sort(rng.choice(n_battles, size=self_battles, replace=False))
        keep = np.ones(n_battles, dtype=bool)
        keep[pos] = False
        a_all = np.empty(n_battles, dtype=a.dtype)
        b_all = np.empty(n_battles, dtype=a.dtype)
        l_all = np.empty(n_battles, dtype=np.int8)
        a_all[keep], b_all[keep], l_all[keep] = a, b, label
        a_all[pos], b_all[pos], l_all[pos] = s, s, s_label
        a, b, label = a_all, b_all, l_all

    names = np.array(model_names(n_models), dtype=object)
    return names, theta, a, b, label


def to_csv(names, a, b, label) -> str:
    na, nb, lab = names[a], names[b], LABELS[label]
    body = "\n".join(map(",".join, zip(na, nb, lab)))
    return "model_a,model_b,winner\n" + body + "\n"


def to_jsonl(names, a, b, label, seed: int = 0, t0: float = 1_700_000_000.0) -> str:
    rng = np.random.default_rng(seed + 1)
    tstamp = t0 + np.cumsum(rng.exponential(2.0, a.size))
    # Model names and labels need no JSON escaping beyond what json.dumps gives
    # once per distinct string.
    qn = np.array([json.dumps(n) for n in names], dtype=object)
    ql = np.array([json.dumps(x) for x in LABELS], dtype=object)
    ts = map("{:.4f}".format, tstamp.tolist())
    rows = map(
        '{{"model_a": {}, "model_b": {}, "winner": {}, "anony": true, "tstamp": {}}}'.format,
        qn[a],
        qn[b],
        ql[label],
        ts,
    )
    return "\n".join(rows) + "\n"


def true_ratings(names, theta) -> dict:
    """Hidden strengths on the display scale (400/ln10 per unit, mean 1000).

    A fitted BT model will not recover these exactly: ties drawn independently
    of strength (rate t) make P(a scores) = (1-t)·sigmoid(d) + t/2, so fitted
    differences come out compressed. Compare ranks, not points.
    """
    pts = (theta - theta.mean()) * 400.0 / np.log(10.0) + 1000.0
    return {str(n): float(r) for n, r in zip(names, pts)}


def write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="-", help="output file ('-' = stdout)")
    ap.add_argument(
        "--format", choices=["csv", "jsonl"], default=None, help="default: from --out's extension, else csv"
    )
    ap.add_argument("--strength-sd", type=float, default=1.0, help="sd of hidden strengths, natural-log units")
    ap.add_argument(
        "--popularity-sigma", type=float, default=1.0, help="lognormal sigma of model popularity (pair skew)"
    )
    ap.add_argument("--tie-rate", type=float, default=0.3)
    ap.add_argument("--bothbad", type=float, default=0.3, help="share of ties labelled 'tie (bothbad)'")
    ap.add_argument("--self-battles", type=int, default=0, help="number of model-vs-itself battles to include")
    ap.add_argument(
        "--truth-out", default=None, help="also write the hidden ratings (display scale, mean 1000) as JSON"
    )
    args = ap.parse_args(argv)

    fmt = args.format or ("jsonl" if args.out.endswith((".jsonl", ".json")) else "csv")
    t0 = time.perf_counter()
    names, theta, a, b, label = generate(
        args.battles,
        args.models,
        args.seed,
        args.strength_sd,
        args.popularity_sigma,
        args.tie_rate,
        args.bothbad,
        args.self_battles,
    )
    text = to_csv(names, a, b, label) if fmt == "csv" else to_jsonl(names, a, b, label, args.seed)
    write(args.out, text)
    if args.truth_out:
        with open(args.truth_out, "w", encoding="utf-8") as f:
            json.dump(true_ratings(names, theta), f, indent=0)
    if args.out != "-":
        print(
            f"wrote {args.battles:,} battles ({args.models} models, {fmt}) to {args.out} "
            f"in {time.perf_counter() - t0:.2f} s",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
