"""The rating models: Bradley–Terry, contextual Bradley–Terry (style control)
and online Elo, fitted by one damped Newton solver (``damped_newton``, which
Davidson's tie model in ``ratings.core.davidson`` uses too).

Pure numpy; no Django. Units as in ``ratings.core.data``: theta in natural-log
units, ratings in points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import (
    BASE,
    INIT_RATING,
    SCALE,
    PairCounts,
    _laplacian,
    _pair_laplacian,
    _pair_sums,
    sigmoid,
)

# When the maximum-likelihood estimate does not exist (a model won or lost every
# battle, or the comparison graph falls apart), this weak L2 penalty (METHOD.md
# convention: (lambda/2) * sum(w^2), w in base-10 logit units) keeps every
# rating finite. It is only used in that case, and a warning says so.
FALLBACK_L2 = 0.01


# --------------------------------------------------------------------------
# the solver


@dataclass
class NewtonResult:
    x: np.ndarray
    iterations: int
    grad_norm: float  # max |gradient| at the end
    state: Any  # what ``objective`` returned with the final x


def damped_newton(
    x0: np.ndarray,
    objective: Callable[[np.ndarray], tuple[float, Any]],
    gradient: Callable[[np.ndarray, Any], np.ndarray],
    hessian: Callable[[np.ndarray, Any], np.ndarray],
    *,
    tol: float,
    max_iter: int = 100,
    frozen: np.ndarray | None = None,
) -> NewtonResult:
    """Minimise a smooth convex objective by Newton steps with backtracking.

    ``objective(x) -> (value, state)``; ``gradient(x, state)`` and
    ``hessian(x, state)`` reuse that state (the linear predictor, say). The
    Hessian must be non-singular as returned: callers add their penalties and
    the centring term that removes BT's constant direction. Stops when
    max|gradient| <= ``tol`` (absolute). ``frozen`` coordinates never move.

    Backtracking (Armijo, factor 1/2) keeps each step a descent step far from
    the optimum; the relative slack 1e-12·|value| stops it fighting rounding
    noise next to the optimum.
    """
    x = np.array(x0, dtype=float)
    obj, state = objective(x)
    grad_norm = math.inf
    it = 0
    for it in range(1, max_iter + 1):
        grad = gradient(x, state)
        grad_norm = float(np.abs(grad).max()) if len(grad) else 0.0
        if grad_norm <= tol:
            it -= 1
            break
        step = np.linalg.solve(hessian(x, state), -grad)
        if frozen is not None:
            step[frozen] = 0.0
        slope = float(grad @ step)
        t = 1.0
        while True:
            cand = x + t * step
            cand_obj, cand_state = objective(cand)
            if cand_obj <= obj + 1e-4 * t * slope + 1e-12 * abs(obj) or t < 1e-8:
                break
            t *= 0.5
        x, obj, state = cand, cand_obj, cand_state
    return NewtonResult(x, it, grad_norm, state)


def _softplus_parts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exp(-|d|), softplus(d)) computed once and shared by loss and sigmoid."""
    e = np.exp(-np.abs(d))
    return e, np.maximum(d, 0.0) + np.log1p(e)


def _sigmoid_from(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.where(d >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _theta_penalty(l2: float) -> float:
    """(l2/2) sum w^2 with w = theta/ln10  ->  (lam/2) sum theta^2."""
    return l2 / math.log(BASE) ** 2


def _centring(active: np.ndarray, size: int, lam: float) -> np.ndarray:
    """11^T over the rated models (unpenalised fits only): it removes the
    constant direction of the thetas from the Newton system, so each step is
    mean-zero over them."""
    centre = np.zeros((size, size))
    if lam == 0.0:
        centre[np.ix_(active, active)] = 1.0
    return centre


# --------------------------------------------------------------------------
# Bradley–Terry maximum likelihood


@dataclass
class BTFit:
    theta: np.ndarray  # natural-log units, mean zero over rated models
    l2: float  # penalty actually used (METHOD.md convention)
    iterations: int
    grad_norm: float  # max |gradient| of the summed penalised NLL at the end
    converged: bool


def fit_bt(
    pc: PairCounts,
    *,
    l2: float = 0.0,
    theta0: np.ndarray | None = None,
    max_iter: int = 100,
    gtol: float = 1e-10,
    active: np.ndarray | None = None,
) -> BTFit:
    """Newton's method on the aggregated counts.

    ``l2``: the METHOD.md penalty (lambda/2)*sum(w^2), w = (R-1000)/400.
    Stops when max|gradient| <= gtol * total weight (gradient of the summed NLL).
    Models with no battles (``active`` False) keep theta = 0 and are left out
    of the centring.
    """
    n = pc.n_models
    if active is None:
        battles = np.bincount(pc.a, pc.count, n) + np.bincount(pc.b, pc.count, n)
        active = battles > 0
    # The likelihood depends on each unordered pair only through its battle
    # count C and the points S scored by its first model, so Newton runs on
    # pairs rather than (a, b, y) rows.
    pa, pb, inv, score_lo = pc.pair_map
    wc = pc.effective
    big_c = np.bincount(inv, wc, len(pa))
    big_s = np.bincount(inv, wc * score_lo, len(pa))
    return fit_pairs(pa, pb, big_c, big_s, n, l2=l2, theta0=theta0, active=active, max_iter=max_iter, gtol=gtol)


def fit_pairs(
    pa: np.ndarray,
    pb: np.ndarray,
    big_c: np.ndarray,
    big_s: np.ndarray,
    n: int,
    *,
    l2: float,
    theta0: np.ndarray | None,
    active: np.ndarray,
    max_iter: int = 100,
    gtol: float = 1e-10,
) -> BTFit:
    """Newton on unordered pairs: C battles of (pa, pb), pa scored S points."""
    lam = _theta_penalty(l2)
    total = max(float(big_c.sum()), 1.0)
    idle = ~active
    # Inactive models have an all-zero Laplacian row: give them a unit diagonal
    # so the system stays solvable; their gradient is zero, so they never move.
    extra = _centring(active, n, lam)
    extra[np.diag_indices(n)] += lam + idle

    def objective(th):
        d = th[pa] - th[pb]
        e, sp = _softplus_parts(d)
        return float(big_c @ sp - big_s @ d + 0.5 * lam * float(th @ th)), (d, e)

    def gradient(th, state):
        d, e = state
        r = big_s - big_c * _sigmoid_from(d, e)
        return np.bincount(pb, r, n) - np.bincount(pa, r, n) + lam * th

    def hessian(th, state):
        d, e = state
        p = _sigmoid_from(d, e)
        return _laplacian(pa, pb, big_c * p * (1.0 - p), n) + extra

    res = damped_newton(
        np.zeros(n) if theta0 is None else theta0, objective, gradient, hessian, tol=gtol * total, max_iter=max_iter
    )
    theta = res.x
    if active.any():
        theta[active] -= theta[active].mean()
    theta[idle] = 0.0
    return BTFit(
        theta=theta,
        l2=l2,
        iterations=res.iterations,
        grad_norm=res.grad_norm,
        converged=res.grad_norm <= gtol * total * 10,
    )


def predicted_winrate(theta: np.ndarray) -> np.ndarray:
    """P(i beats j) under the fitted model."""
    return sigmoid(theta[:, None] - theta[None, :])


# --------------------------------------------------------------------------
# style control: contextual Bradley–Terry


@dataclass
class StyleFit:
    theta: np.ndarray
    beta: np.ndarray
    se_theta: np.ndarray | None
    iterations: int
    grad_norm: float
    cov_theta: np.ndarray | None = None  # sandwich covariance of theta (for simultaneous intervals)
    converged: bool = True
    l2: float = 0.0


def style_hessian(pair: np.ndarray, ft: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """sum over battles of weights * x x^T, x = (e_a - e_b, f): the (theta, beta)
    Hessian of contextual BT (weights = w p (1 - p)), or the sandwich's meat
    (weights = c (w (y - p))^2). ``ft`` is (features, battles)."""
    k = ft.shape[0]
    h = np.zeros((n + k, n + k))
    h[:n, :n] = _pair_laplacian(pair, weights, n)
    for j in range(k):
        m = _pair_sums(pair, weights * ft[j], n)
        h[:n, n + j] = m.sum(axis=1) - m.sum(axis=0)
    h[n:, :n] = h[:n, n:].T
    h[n:, n:] = (ft * weights) @ ft.T
    return h


def fit_style_bt(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    features: np.ndarray,
    n_models: int,
    *,
    l2: float = 0.0,
    beta_l2: float = 0.5,
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
    intervals: bool = True,
    max_iter: int = 100,
    gtol: float = 1e-10,
    theta0: np.ndarray | None = None,
    beta0: np.ndarray | None = None,
) -> StyleFit:
    """Contextual BT: logit = theta_a - theta_b + beta . f, per battle (no aggregation).

    ``count``: how many battles each row stands for (1 each by default);
    ``weight``: the per-battle weight (reweighting; 1 by default). The loss
    sums count * weight * NLL. ``beta_l2``: (beta_l2/2)*|beta|^2 on the
    summed loss (FastChat's 0.5); ``l2`` as in fit_bt for theta.
    Self-battles must be removed by the caller. ``intervals``: also the
    sandwich covariance (``ratings.core.intervals.style_sandwich_cov``).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=float)
    # One row per feature: contiguous rows make the per-feature passes cheap.
    ft = np.ascontiguousarray(np.asarray(features, dtype=float).T)
    n, k = n_models, ft.shape[0]
    c = np.ones(len(a)) if count is None else np.asarray(count, dtype=float)
    w = c if weight is None else c * np.asarray(weight, dtype=float)
    lam = _theta_penalty(l2)
    # Every per-model sum below is one bincount over the ordered pair code
    # (then row sums minus column sums), not one per side.
    pair = a * n + b
    battles = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    active = battles > 0
    total = max(float(w.sum()), 1.0)
    wy = w * y
    extra = _centring(active, n + k, lam)
    extra[np.diag_indices(n + k)] += np.concatenate([lam + (~active), np.full(k, beta_l2)])

    def objective(x):
        th, be = x[:n], x[n:]
        d = (th[:, None] - th[None, :]).ravel()[pair] + be @ ft
        e, sp = _softplus_parts(d)
        return float(w @ sp - wy @ d + 0.5 * lam * th @ th + 0.5 * beta_l2 * be @ be), (d, e)

    def gradient(x, state):
        r = w * (y - _sigmoid_from(*state))
        m = _pair_sums(pair, r, n)
        return np.concatenate([-(m.sum(axis=1) - m.sum(axis=0)) + lam * x[:n], -(ft @ r) + beta_l2 * x[n:]])

    def hessian(x, state):
        p = _sigmoid_from(*state)
        return style_hessian(pair, ft, w * p * (1.0 - p), n) + extra

    # Starting from the plain BT ratings saves most of the Newton steps.
    x0 = np.concatenate(
        [
            np.zeros(n) if theta0 is None else np.asarray(theta0, dtype=float),
            np.zeros(k) if beta0 is None else np.asarray(beta0, dtype=float),
        ]
    )
    res = damped_newton(x0, objective, gradient, hessian, tol=gtol * total, max_iter=max_iter)
    theta, beta = res.x[:n].copy(), res.x[n:].copy()
    theta[active] -= theta[active].mean()
    fit = StyleFit(
        theta=theta,
        beta=beta,
        se_theta=None,
        iterations=res.iterations,
        grad_norm=res.grad_norm,
        converged=res.grad_norm <= gtol * total * 10,
        l2=l2,
    )
    if intervals:
        from .intervals import style_sandwich_cov  # intervals imports this module

        cov = style_sandwich_cov(a, b, y, features, n, theta, beta, l2=l2, beta_l2=beta_l2, weight=weight, count=count)
        fit.cov_theta = cov
        fit.se_theta = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return fit


# --------------------------------------------------------------------------
# online Elo (order-dependent; a comparison view, never the headline)


def online_elo(a: np.ndarray, b: np.ndarray, y: np.ndarray, n_models: int, k: float = 4.0) -> np.ndarray:
    """Sequential Elo in the given order, base 10, scale 400, start 1000."""
    rating = [INIT_RATING] * n_models
    for ia, ib, s in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        if ia == ib:
            continue
        ra, rb = rating[ia], rating[ib]
        ea = 1.0 / (1.0 + BASE ** ((rb - ra) / SCALE))
        delta = k * (s - ea)
        rating[ia] = ra + delta
        rating[ib] = rb - delta
    return np.array(rating)
