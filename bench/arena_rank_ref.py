"""Reference run of LMArena's arena-rank 0.1.1 (BT + sandwich CIs) on a battle file.

Runs ONLY inside the benchmark venv (bench/setup_reference.sh):

    .bench-venv/bin/python bench/arena_rank_ref.py /tmp/b.csv [--residual]

Reads the CSV (model_a,model_b,winner) or JSON/JSONL battles with pandas, then
times exactly what arena-rank does for a leaderboard:
``PairDataset.from_pandas`` (aggregation), ``BradleyTerry.fit`` (L-BFGS, incl.
JAX compilation) and ``compute_ratings_and_cis(ci_method="sandwich")``.
Prints one JSON object on stdout: models (name, rating, lower, upper),
timings in seconds, L-BFGS iterations, and with ``--residual`` the distance of
arena-rank's answer from the exact MLE (computed after the timed part).

Labels: arena-rank's default outcome map knows model_a / model_b / tie /
both_bad and maps anything else (including "tie (bothbad)") to 0.5, which is
what LMArena's vocabulary means anyway.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

T_START = time.perf_counter()

import arena_rank.models.rating_system as rating_system  # noqa: E402 - timed from T_START: the import is part of the measured cost
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from arena_rank.models.bradley_terry import BradleyTerry  # noqa: E402
from arena_rank.utils.data_utils import PairDataset  # noqa: E402

T_IMPORTED = time.perf_counter()

# Record L-BFGS's final state (iterations) without changing what fit() does.
_LBFGS_INFO: dict = {}
_orig_lbfgs = rating_system.lbfgs_minimize


def _lbfgs_recording(*args, **kwargs):
    params, state = _orig_lbfgs(*args, **kwargs)
    import optax

    _LBFGS_INFO["iterations"] = int(optax.tree_utils.tree_get(state, "count", 0))
    _LBFGS_INFO["final_mean_loss"] = float(optax.tree_utils.tree_get(state, "value", jnp.inf))
    return params, state


rating_system.lbfgs_minimize = _lbfgs_recording


def read_battles(path: str) -> pd.DataFrame:
    if path.endswith(".csv"):
        return pd.read_csv(path, usecols=["model_a", "model_b", "winner"], dtype=str)
    if path.endswith(".jsonl"):
        df = pd.read_json(path, lines=True)
    else:
        df = pd.read_json(path)
    if "anony" in df.columns:
        df = df[df["anony"].astype(bool)]
    return df[["model_a", "model_b", "winner"]]


def block(x):
    jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)
    return x


def residual(ds: PairDataset, theta: np.ndarray, alpha: float) -> dict:
    """How far arena-rank's L-BFGS stopped from the exact (unpenalised) MLE.

    Gradient of the summed negative log-likelihood at arena-rank's theta, and
    one Newton step (on the sum-zero subspace) from there: with the Hessian a
    graph Laplacian, that step is the distance to the MLE to second order.
    """
    pairs = np.asarray(ds.pairs)
    y = np.asarray(ds.outcomes)
    w = np.asarray(ds.opt_weights)
    a, b = pairs[:, 0], pairs[:, 1]
    m = len(theta)
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
    r = w * (y - p)  # d(loglik)/d(theta_a) per row
    grad = np.bincount(a, r, m) - np.bincount(b, r, m)
    h = w * p * (1 - p)
    H = np.zeros((m, m))
    np.add.at(H, (a, a), h)
    np.add.at(H, (b, b), h)
    np.add.at(H, (a, b), -h)
    np.add.at(H, (b, a), -h)
    # Newton step on the sum-zero subspace (ones/m fixes the gauge).
    step = np.linalg.solve(H + np.ones((m, m)) / m, grad)
    step -= step.mean()
    total = float(w.sum())
    return {
        "max_abs_grad_summed_nll": float(np.abs(grad).max()),
        "max_abs_grad_mean_nll": float(np.abs(grad).max() / total),
        "newton_step_max_points": float(np.abs(step).max() * alpha),
        "newton_step_rms_points": float(np.sqrt(np.mean(step**2)) * alpha),
        "theta_mean": float(theta.mean()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--residual", action="store_true", help="also report the distance from the exact MLE (untimed)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    df = read_battles(args.file)
    n_rows = len(df)
    df = df[df["model_a"] != df["model_b"]]  # self-battles carry no information
    t1 = time.perf_counter()
    ds = PairDataset.from_pandas(df)
    block((ds.pairs, ds.outcomes, ds.counts, ds.opt_weights))
    t2 = time.perf_counter()
    model = BradleyTerry(n_competitors=ds.n_competitors)
    model.fit(ds)
    block(model.params)
    t3 = time.perf_counter()
    out = model.compute_ratings_and_cis(ds, ci_method="sandwich")
    block(out)
    t4 = time.perf_counter()

    ratings = np.asarray(out["ratings"], dtype=float)
    lower = np.asarray(out["rating_lower"], dtype=float)
    upper = np.asarray(out["rating_upper"], dtype=float)
    result = {
        "reference": "arena-rank 0.1.1",
        "battles_read": n_rows,
        "battles_used": int(len(df)),
        "distinct_rows": int(ds.n_pairs),
        "models": [
            {"model": c, "rating": float(r), "lower": float(lo), "upper": float(up)}
            for c, r, lo, up in zip(out["competitors"], ratings, lower, upper)
        ],
        "lbfgs": _LBFGS_INFO,
        "timings": {
            "import": T_IMPORTED - T_START,
            "read": t1 - t0,
            "aggregate": t2 - t1,
            "fit": t3 - t2,
            "intervals": t4 - t3,
            "compute": t4 - t1,
        },
    }
    if args.residual:
        theta = np.asarray(model.params["ratings"], dtype=float)
        result["residual"] = residual(ds, theta, model.alpha)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
