"""Confidence intervals: sandwich (Bradley–Terry and contextual BT), the
bootstrap (pair resamples for BT, battle resamples for contextual BT),
simultaneous intervals, and rank (UB).

Pure numpy; no Django. Every interval is computed on the centred scale (mean
rating 1000 over the rated models); an anchor only shifts ratings and bounds
alike (``_shift_for_anchor``), whatever the method, so widths do not depend
on it (docs/RATINGS.md).
"""

from __future__ import annotations

import math

import numpy as np

from .data import POINTS_PER_THETA, PairCounts, _laplacian, sigmoid, theta_to_points
from .models import FALLBACK_L2, _theta_penalty, fit_pairs, fit_style_bt, style_hessian

# arena-rank's sandwich ridge: epsilon = 1e-5 x total battles on the Hessian diagonal.
SANDWICH_EPS_PER_BATTLE = 1e-5
# Bootstrap refits stop at max|gradient| <= 1e-8 x battles: far below the
# noise of a 2.5% quantile, and a step or two cheaper than the headline fit.
BOOTSTRAP_GTOL = 1e-8


def sandwich_se(pc: PairCounts, theta: np.ndarray, l2: float = 0.0) -> np.ndarray:
    """Standard errors of theta (natural-log units), V = H^-1 G H^-1.

    H = sum c*w*p(1-p) x x^T + (lambda + eps) I, G = sum c*(w*(y-p))^2 x x^T,
    x = e_a - e_b, eps = 1e-5 x total weight (arena-rank's ridge).
    """
    n = pc.n_models
    d = theta[pc.a] - theta[pc.b]
    p = sigmoid(d)
    wc = pc.effective
    hess = _laplacian(pc.a, pc.b, wc * p * (1.0 - p), n)
    hess[np.diag_indices(n)] += _theta_penalty(l2) + SANDWICH_EPS_PER_BATTLE * float(wc.sum())
    meat = _laplacian(pc.a, pc.b, pc.count * (pc.weight * (pc.y - p)) ** 2, n)
    return _sandwich_se(hess, meat, n)


def sandwich_cov(pc: PairCounts, theta: np.ndarray, l2: float = 0.0) -> np.ndarray:
    """The full sandwich covariance of theta (what ``sandwich_se`` is the diagonal of)."""
    n = pc.n_models
    p = sigmoid(theta[pc.a] - theta[pc.b])
    wc = pc.effective
    hess = _laplacian(pc.a, pc.b, wc * p * (1.0 - p), n)
    hess[np.diag_indices(n)] += _theta_penalty(l2) + SANDWICH_EPS_PER_BATTLE * float(wc.sum())
    meat = _laplacian(pc.a, pc.b, pc.count * (pc.weight * (pc.y - p)) ** 2, n)
    return _sandwich_cov(hess, meat, n)[:n, :n]


def _sandwich_cov(hess: np.ndarray, meat: np.ndarray, n: int) -> np.ndarray:
    """H^-1 G H^-1 with the all-ones direction of the first ``n`` coordinates
    projected out (see ``_sandwich_se``)."""
    proj = np.eye(len(hess))
    proj[:n, :n] -= 1.0 / n
    shifted = hess.copy()
    shifted[:n, :n] += 1.0
    hinv = proj @ np.linalg.inv(shifted) @ proj
    return hinv @ meat @ hinv


def _sandwich_se(hess: np.ndarray, meat: np.ndarray, n: int) -> np.ndarray:
    """sqrt(diag(H^-1 G H^-1)) over the first ``n`` coordinates (the thetas).

    The all-ones direction u of the thetas is an eigenvector of H with the
    tiny eigenvalue lambda + eps, and G u = 0 (every x = e_a - e_b, with or
    without style features, is orthogonal to u). Inverting H as it is
    magnifies rounding along u by 1/eps twice: the bounds moved by ~1e-6
    points when a and b swapped sides. So H + u u^T is inverted instead (the
    same inverse off u) and u is projected out; in exact arithmetic the
    result is unchanged.
    """
    cov = _sandwich_cov(hess, meat, n)
    return np.sqrt(np.clip(np.diag(cov)[:n], 0.0, None))


def rank_ub(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank (UB): 1 + number of models whose lower bound exceeds my upper bound."""
    lower = np.asarray(lower)
    upper = np.asarray(upper)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def style_sandwich_cov(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    features: np.ndarray,
    n: int,
    theta: np.ndarray,
    beta: np.ndarray,
    *,
    l2: float,
    beta_l2: float,
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
) -> np.ndarray:
    """Sandwich covariance of theta for contextual BT, from the full (theta,
    beta) Hessian: H = sum c*w*p(1-p) x x^T + ridge, G = sum c*(w*(y-p))^2 x x^T,
    x = (e_a - e_b, f); the ridge is (lambda + eps) on the thetas, beta_l2 on beta."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=float)
    ft = np.ascontiguousarray(np.asarray(features, dtype=float).T)
    k = ft.shape[0]
    c = np.ones(len(a)) if count is None else np.asarray(count, dtype=float)
    wt = np.ones(len(a)) if weight is None else np.asarray(weight, dtype=float)
    w = c * wt
    pair = a * n + b
    p = sigmoid((theta[:, None] - theta[None, :]).ravel()[pair] + beta @ ft)
    h = style_hessian(pair, ft, w * p * (1.0 - p), n)
    total = max(float(w.sum()), 1.0)
    h[np.diag_indices(n + k)] += np.concatenate(
        [np.full(n, _theta_penalty(l2) + SANDWICH_EPS_PER_BATTLE * total), np.full(k, beta_l2)]
    )
    return _sandwich_cov(h, style_hessian(pair, ft, c * (wt * (y - p)) ** 2, n), n)[:n, :n]


def _shift_for_anchor(theta: np.ndarray, anchor: tuple[int, float] | None) -> float:
    """Rating-point shift that pins the anchor model; 0 when centring."""
    if anchor is None:
        return 0.0
    idx, rating = anchor
    return float(rating - theta_to_points(theta[idx]))


def pair_resamples(pc: PairCounts, rounds: int, seed: int | None):
    """Bootstrap draws on unordered pairs: yields, per round, (battles, wins,
    ties) of each pair's first model, and returns nothing else.

    Each round draws ``total`` battles from the aggregated rows (FastChat's
    resampling of the battle multiset), in two stages, which is the same
    multinomial over the rows: battles per unordered pair, then each pair's
    battles over its outcomes (first model scored 1, 1/2 or 0). One
    ``SeedSequence`` child per round: the draws depend on (seed, rounds) only.
    """
    pa, _, inv, score_lo = pc.pair_map
    n_pairs = len(pa)
    c_pair = np.bincount(inv, pc.count, n_pairs)
    c_win = np.bincount(inv, pc.count * (score_lo == 1.0), n_pairs)
    c_tie = np.bincount(inv, pc.count * (score_lo == 0.5), n_pairs)
    p_win = np.divide(c_win, c_pair, out=np.zeros(n_pairs), where=c_pair > 0)
    rest = c_pair - c_win
    p_tie_rest = np.clip(np.divide(c_tie, rest, out=np.zeros(n_pairs), where=rest > 0), 0.0, 1.0)
    total = int(round(pc.total))
    probs = c_pair / c_pair.sum()
    for ss in np.random.SeedSequence(seed).spawn(rounds):
        rng = np.random.default_rng(ss)
        n_ab = rng.multinomial(total, probs)
        wins = rng.binomial(n_ab, p_win)
        ties = rng.binomial(n_ab - wins, p_tie_rest)
        yield n_ab, wins, ties


def pair_weights(pc: PairCounts) -> np.ndarray:
    """Per-battle weight of each unordered pair (reweighting gives every battle of a pair the same weight)."""
    pa, _, inv, _ = pc.pair_map
    n_pairs = len(pa)
    c_pair = np.bincount(inv, pc.count, n_pairs)
    return np.bincount(inv, pc.effective, n_pairs) / np.where(c_pair > 0, c_pair, 1.0)


def bootstrap_samples(
    pc: PairCounts,
    theta: np.ndarray,
    *,
    l2: float,
    rounds: int,
    seed: int | None,
    anchor: tuple[int, float] | None = None,
    active: np.ndarray,
) -> np.ndarray:
    """Bradley–Terry refits on ``pair_resamples``: (rounds, models) in rating points.

    Each refit starts from the full-data optimum and is centred like the main
    fit; ``anchor`` shifts every round by the main fit's anchor shift (the
    same for all rounds, so the spread is the centred one: an anchor never
    changes a width). FastChat re-anchored each round instead, which gives
    the anchor model a zero-width interval and widens the others.
    """
    n = pc.n_models
    pa, pb, _, _ = pc.pair_map
    w_pair = pair_weights(pc)
    shift = _shift_for_anchor(theta, anchor)
    samples = np.empty((rounds, n))
    # Measured: threads make this slower (the arrays are small, the GIL
    # dominates), so the rounds run one after another.
    for r, (n_ab, wins, ties) in enumerate(pair_resamples(pc, rounds, seed)):
        big_c = n_ab.astype(np.float64)
        big_s = wins + 0.5 * ties
        sub_l2 = l2
        if l2 == 0.0:  # cheap existence check: every rated model scored and conceded
            scored = np.bincount(pa, big_s, n) + np.bincount(pb, big_c - big_s, n)
            conceded = np.bincount(pa, big_c - big_s, n) + np.bincount(pb, big_s, n)
            if np.any(active & ((scored == 0) | (conceded == 0))):
                sub_l2 = FALLBACK_L2
        big_c, big_s = big_c * w_pair, big_s * w_pair
        fit = fit_pairs(pa, pb, big_c, big_s, n, l2=sub_l2, theta0=theta, active=active, gtol=BOOTSTRAP_GTOL)
        if not fit.converged and sub_l2 == 0.0:  # a group, not a single model, got separated
            fit = fit_pairs(pa, pb, big_c, big_s, n, l2=FALLBACK_L2, theta0=theta, active=active, gtol=BOOTSTRAP_GTOL)
        samples[r] = theta_to_points(fit.theta) + shift
    return samples


def bootstrap_bounds(
    pc: PairCounts,
    theta: np.ndarray,
    *,
    l2: float,
    rounds: int,
    seed: int | None,
    anchor: tuple[int, float] | None = None,
    active: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """2.5% / 97.5% quantiles of the rating over ``bootstrap_samples``."""
    samples = bootstrap_samples(pc, theta, l2=l2, rounds=rounds, seed=seed, anchor=anchor, active=active)
    return np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)


def battle_resamples(count: np.ndarray, rounds: int, seed: int | None):
    """Bootstrap draws of per-battle rows: per round, how many times each row
    is drawn, ``total`` draws with probabilities ∝ ``count`` (FastChat's
    resampling of the battle multiset). One ``SeedSequence`` child per round,
    as ``pair_resamples``."""
    count = np.asarray(count, dtype=float)
    total = int(round(count.sum()))
    probs = count / max(count.sum(), 1e-300)
    for ss in np.random.SeedSequence(seed).spawn(rounds):
        yield np.random.default_rng(ss).multinomial(total, probs).astype(np.float64)


def style_bootstrap_samples(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    features: np.ndarray,
    n: int,
    theta: np.ndarray,
    beta: np.ndarray,
    *,
    l2: float,
    beta_l2: float,
    rounds: int,
    seed: int | None,
    active: np.ndarray,
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
    anchor: tuple[int, float] | None = None,
) -> np.ndarray:
    """Contextual BT refits on ``battle_resamples``: (rounds, models) in rating points.

    The same rules as ``bootstrap_samples``: battles are drawn by their
    ``count`` and each draw keeps its ``weight`` (reweighting is applied to
    the resample, not used to draw it); a round in which a rated model never
    scored or never conceded is fitted with the fallback penalty, as is one
    whose unpenalised fit does not converge; rounds are centred and the
    anchor only shifts them. The features stay those of the full data.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=float)
    c = np.ones(len(a)) if count is None else np.asarray(count, dtype=float)
    shift = _shift_for_anchor(theta, anchor)
    samples = np.empty((rounds, n))
    for r, draw in enumerate(battle_resamples(c, rounds, seed)):
        sub_l2 = l2
        if l2 == 0.0:
            scored = np.bincount(a, draw * y, n) + np.bincount(b, draw * (1.0 - y), n)
            conceded = np.bincount(a, draw * (1.0 - y), n) + np.bincount(b, draw * y, n)
            if np.any(active & ((scored == 0) | (conceded == 0))):
                sub_l2 = FALLBACK_L2
        kw = {
            "beta_l2": beta_l2,
            "weight": weight,
            "count": draw,
            "intervals": False,
            "theta0": theta,
            "beta0": beta,
            "gtol": BOOTSTRAP_GTOL,
        }
        fit = fit_style_bt(a, b, y, features, n, l2=sub_l2, **kw)
        if not fit.converged and sub_l2 == 0.0:
            fit = fit_style_bt(a, b, y, features, n, l2=FALLBACK_L2, **kw)
        samples[r] = theta_to_points(fit.theta) + shift
    return samples


# --------------------------------------------------------------------------
# simultaneous intervals: hold for every model at once


# The sandwich's simultaneous critical value is a quantile of max_i |Z_i| / sd_i
# for Z ~ N(0, V), estimated from this many draws with a fixed seed, so the
# same data always give the same bounds. Monte Carlo error of the covered
# level: sqrt(0.95 * 0.05 / 10000) = 0.22 percentage points. The cost grows
# with draws x models^2 and the recompute pays it once per view, so above
# 63 models the draws shrink to keep draws x models^2 <= 4e7 (2,000 draws,
# 0.49 points, for 200 models: 0.04 s instead of 0.2 s on the loaded 2-core
# machine); they are float32, which a quantile does not notice. The result
# is also capped by Sidak's bound, exact for independent ratings and never
# below the true value for any correlation (Sidak 1967), so the Monte Carlo
# noise cannot push c above it; with centred ratings the two agree to
# about 0.01 (3.652 simulated, 3.656 Sidak, for 200 models).
SIMULTANEOUS_DRAWS = 10_000
SIMULTANEOUS_BUDGET = 40_000_000
SIMULTANEOUS_SEED = 20_260_415
LEVEL = 0.95


def max_abs_quantile(
    cov: np.ndarray, *, level: float = LEVEL, draws: int | None = None, seed: int = SIMULTANEOUS_SEED
) -> float:
    """c with P(max_i |Z_i| / sd_i <= c) = level for Z ~ N(0, cov), by simulation.

    Coordinates with zero variance (an anchored model) are left out. The
    covariance of centred ratings is singular (rank n - 1), so it is factored
    by eigendecomposition, not Cholesky. With one coordinate this is the
    normal quantile (1.96 at 95%).
    """
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    keep = sd > 1e-12 * max(float(sd.max(initial=0.0)), 1e-300)
    m = int(keep.sum())
    if m == 0:
        return 0.0
    if m == 1:
        return float(_normal_quantile(0.5 + level / 2))
    if draws is None:
        draws = int(min(SIMULTANEOUS_DRAWS, max(2_000, SIMULTANEOUS_BUDGET // (m * m))))
    sidak = _normal_quantile(0.5 + 0.5 * level ** (1.0 / m))
    corr = cov[np.ix_(keep, keep)] / np.outer(sd[keep], sd[keep])
    vals, vecs = np.linalg.eigh(corr)
    root_t = (vecs * np.sqrt(np.clip(vals, 0.0, None))).T.astype(np.float32)
    rng = np.random.default_rng(seed)
    top = np.empty(draws)
    for start in range(0, draws, 4096):  # bounded memory for many models
        k = min(4096, draws - start)
        z = rng.standard_normal((k, m), dtype=np.float32) @ root_t
        top[start : start + k] = np.abs(z).max(axis=1)
    return float(min(np.quantile(top, level), sidak))


def _normal_quantile(p: float) -> float:
    """Inverse standard normal CDF by bisection on erf (no scipy)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def simultaneous_sandwich(
    rating: np.ndarray, cov_theta: np.ndarray, active: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray, float]:
    """rating ± c·se with c the max-|z| quantile of the fitted normal over the rated models.
    Returns (lower, upper, c)."""
    idx = np.flatnonzero(active)
    c = max_abs_quantile(cov_theta[np.ix_(idx, idx)], level=level)
    half = c * np.sqrt(np.clip(np.diag(cov_theta), 0.0, None)) * POINTS_PER_THETA
    return rating - half, rating + half, c


def simultaneous_bootstrap(
    rating: np.ndarray, samples: np.ndarray, active: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray, float]:
    """The max-statistic over rounds: t_r = max_i |sample_ri - rating_i| / sd_i,
    c = its ``level`` quantile, bounds rating ± c·sd (sd: the bootstrap
    standard deviation). Returns (lower, upper, c).

    The quantile is the order statistic t_(k), k = ceil(level (R + 1)), not an
    interpolated one: a new draw falls below the k-th smallest of R with
    probability k / (R + 1), so with 100 rounds this is the 96th value and
    covers 95%; linear interpolation (the 95.05th) covered 91.5% jointly in
    bench/bench_coverage.py."""
    sd = samples.std(axis=0, ddof=1) if len(samples) > 1 else np.zeros(samples.shape[1])
    use = active & (sd > 1e-12)
    if not use.any():
        return rating.copy(), rating.copy(), 0.0
    t = np.sort((np.abs(samples[:, use] - rating[use]) / sd[use]).max(axis=1))
    c = float(t[min(len(t), math.ceil(level * (len(t) + 1))) - 1])
    half = np.where(use, c * sd, 0.0)
    return rating - half, rating + half, c
