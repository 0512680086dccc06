"""A personal leaderboard: one voter's Bradley–Terry ratings, shrunk toward
everyone's. Pure numpy, like ``ratings.engine``.

The voter's strengths theta get a Gaussian prior centred on the global
(published) strengths g: theta_i ~ N(g_i, PRIOR_SD^2), independently. The
estimate is the posterior mode (MAP):

    minimise  sum_battles NLL_BT(theta) + sum_i (theta_i - g_i)^2 / (2 PRIOR_SD^2)

by Newton's method on the voter's pairs (ties count half, as in the global
ratings), and the 95% intervals are the Laplace approximation: theta ± 1.96
sqrt(diag((H + I / PRIOR_SD^2)^-1)), H the BT Hessian. A model the voter
never saw keeps the global strength exactly (its prior term is all it has),
so only the models they met are fitted and listed.

With few votes the prior dominates and the personal board is the global
one; with many, the voter's own votes do. PRIOR_SD was chosen by held-out
log-loss on generated voters whose tastes differ from the crowd
(bench/bench_personal.py, docs/RATINGS.md "Personal leaderboards").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import engine as E

MIN_VOTES = 20
# Prior standard deviation of a voter's strength around the crowd's, in
# natural-log units (x 173.7 for rating points): 0.5 = 87 points. Measured
# in bench/bench_personal.py: the best single value over voters whose tastes
# differ from the crowd's by 0.25-1.0 (sd) and who cast 20-1,000 votes.
PRIOR_SD = 0.5
MOST_DIFFERENT = 5


@dataclass
class PersonalFit:
    models: np.ndarray  # indices of the models the voter met
    theta: np.ndarray  # posterior mode, natural-log units, for ``models``
    se: np.ndarray  # posterior standard deviation (Laplace)
    prior: np.ndarray  # the global strengths of ``models``
    battles: np.ndarray  # the voter's battles with each of ``models``
    iterations: int


def fit_personal(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    prior_theta: np.ndarray,
    *,
    prior_sd: float = PRIOR_SD,
    max_iter: int = 50,
    gtol: float = 1e-9,
) -> PersonalFit:
    """MAP of the voter's strengths. ``a``, ``b``: model indices into
    ``prior_theta`` (the global strengths); ``y``: 1, 0.5 or 0 for a."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=float)
    keep = a != b
    a, b, y = a[keep], b[keep], y[keep]
    met = np.union1d(a, b)
    m = len(met)
    local = np.full(len(prior_theta), -1, dtype=np.int64)
    local[met] = np.arange(m)
    pc = E.aggregate(local[a], local[b], y, m)
    pa, pb, inv, score_lo = pc.pair_map
    big_c = np.bincount(inv, pc.count, len(pa))
    big_s = np.bincount(inv, pc.count * score_lo, len(pa))
    mu = np.asarray(prior_theta, dtype=float)[met]
    tau = 1.0 / prior_sd**2

    def objective(th: np.ndarray) -> tuple[float, np.ndarray]:
        d = th[pa] - th[pb]
        _, sp = E._softplus_parts(d)
        return float(big_c @ sp - big_s @ d + 0.5 * tau * float((th - mu) @ (th - mu))), d

    def gradient(th: np.ndarray, d: np.ndarray) -> np.ndarray:
        r = big_s - big_c * E.sigmoid(d)
        return np.bincount(pb, r, m) - np.bincount(pa, r, m) + tau * (th - mu)

    def hessian(th: np.ndarray, d: np.ndarray) -> np.ndarray:
        p = E.sigmoid(d)
        hess = E._laplacian(pa, pb, big_c * p * (1.0 - p), m)
        hess[np.diag_indices(m)] += tau  # the prior makes it positive definite: no centring needed
        return hess

    # The engine's damped Newton solver; the objective is strictly convex, so
    # halving only guards the first steps.
    res = E.damped_newton(
        mu.copy(), objective, gradient, hessian, tol=gtol * max(float(big_c.sum()), 1.0), max_iter=max_iter
    )
    theta, it = res.x, res.iterations
    se = np.sqrt(np.clip(np.diag(np.linalg.inv(hessian(theta, res.state))), 0.0, None))
    battles = np.bincount(pc.a, pc.count, m) + np.bincount(pc.b, pc.count, m)
    return PersonalFit(met, theta, se, mu, battles, it)


def board(fit: PersonalFit, global_rating: np.ndarray, names: list[str]) -> tuple[list[dict], list[dict]]:
    """(rows, most different) for display. Personal ratings are in the global
    board's points: global rating + (theta - g) x 400/ln 10."""
    diff = (fit.theta - fit.prior) * E.POINTS_PER_THETA
    rating = global_rating[fit.models] + diff
    half = E.Z95 * fit.se * E.POINTS_PER_THETA
    lower, upper = rating - half, rating + half
    rank = E.rank_ub(lower, upper) if len(rating) else np.zeros(0, dtype=np.int64)
    rows = [
        {
            "model": names[int(k)],
            "rating": round(float(rating[j]), 4),
            "lower": round(float(lower[j]), 4),
            "upper": round(float(upper[j]), 4),
            "rank": int(rank[j]),
            "global_rating": round(float(global_rating[k]), 4),
            "difference": round(float(diff[j]), 4),
            "battles": int(fit.battles[j]),
        }
        for j, k in enumerate(fit.models)
    ]
    rows.sort(key=lambda r: (r["rank"], -r["rating"], r["model"]))
    # How far the voter's posterior moved each model from the crowd, in its
    # own posterior standard deviations: large only with evidence behind it.
    z = (fit.theta - fit.prior) / np.where(fit.se > 0, fit.se, np.inf)
    order = np.argsort(-np.abs(z), kind="stable")[:MOST_DIFFERENT]
    different = [
        {
            "model": names[int(fit.models[j])],
            "difference": round(float(diff[j]), 4),
            "z": round(float(z[j]), 4),
            "direction": "higher" if diff[j] > 0 else "lower",
        }
        for j in order
        if abs(z[j]) > 0
    ]
    return rows, different


def held_out_log_loss(theta: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of outcomes y (a tie is half a win) under sigmoid(theta_a - theta_b)."""
    p = np.clip(E.sigmoid(theta[a] - theta[b]), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def full_theta(fit: PersonalFit, prior_theta: np.ndarray) -> np.ndarray:
    """The voter's strengths for every model: fitted where met, global elsewhere."""
    out = np.array(prior_theta, dtype=float)
    out[fit.models] = fit.theta
    return out


def prior_sd_points(prior_sd: float = PRIOR_SD) -> float:
    return prior_sd * E.POINTS_PER_THETA if math.isfinite(prior_sd) else math.inf
