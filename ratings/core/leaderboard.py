"""The leaderboard in one call: ``leaderboard(...)`` fits Bradley–Terry (ties as
half a win, or Davidson's tie model) or contextual Bradley–Terry (style
control), computes any interval method (sandwich, bootstrap, none; marginal
and optionally simultaneous), with weights (reweighting) and an anchor, and
returns ratings, bounds, ranks, method labels, the anchor and convergence.

``rate_battles`` and the recompute both call it, so a view in the API and the
command on an export of the same votes compute the same numbers (tested in
tests/ratings/test_api_matches_cli.py).

Pure numpy; no Django.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import davidson
from .data import (
    POINTS_PER_THETA,
    STYLE_FEATURES,
    Z95,
    PairCounts,
    battle_weights,
    diagnose,
    reweighted,
    theta_to_points,
)
from .intervals import (
    _shift_for_anchor,
    bootstrap_samples,
    rank_ub,
    sandwich_cov,
    sandwich_se,
    simultaneous_bootstrap,
    simultaneous_sandwich,
    style_bootstrap_samples,
)
from .models import FALLBACK_L2, BTFit, fit_bt, fit_style_bt

CI_METHODS = ("sandwich", "bootstrap", "none")
TIE_MODELS = ("half", "davidson")


@dataclass
class StyleBattles:
    """Contextual BT's input: one row per battle (or per ``count`` identical
    battles), self-battles already removed. ``features`` is (rows, 4) in
    ``STYLE_FEATURES`` order, as ``data.style_design`` makes them (z-scored
    over these rows)."""

    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    features: np.ndarray
    count: np.ndarray | None = None


@dataclass
class Leaderboard:
    rating: np.ndarray  # rating points (anchored when an anchor was given)
    lower: np.ndarray
    upper: np.ndarray
    rank: np.ndarray
    theta: np.ndarray  # natural-log units, centred (mean zero over rated models), never anchored
    battles: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    active: np.ndarray
    fit: BTFit  # theta, penalty used, iterations, gradient, convergence
    warnings: list[str]
    flags: dict[int, list[str]]
    ci: str  # the interval method actually used: "sandwich", "bootstrap" or "none"
    timings: dict[str, float] = field(default_factory=dict)
    # Simultaneous bounds (``simultaneous=True``): all rated models inside at
    # once with 95% probability; ``critical_value`` replaces 1.96.
    sim_lower: np.ndarray | None = None
    sim_upper: np.ndarray | None = None
    sim_rank: np.ndarray | None = None
    critical_value: float | None = None
    tie_model: str = "half"
    # Davidson's tie parameter nu (``ties="davidson"``), with its 95% interval.
    tie_param: dict | None = None
    model: str = "bt"  # "bt", "davidson" or "contextual_bt"
    anchor: tuple[int, float] | None = None
    shift: float = 0.0  # rating points added to every rating and bound by the anchor
    style_coefficients: dict[str, float] | None = None  # beta (contextual BT), per feature
    reweighted: bool = False


def leaderboard(
    pc: PairCounts,
    *,
    names: list[str] | None = None,
    ci: str = "sandwich",
    rounds: int = 100,
    seed: int | None = None,
    l2: float = 0.0,
    anchor: tuple[int, float] | None = None,
    simultaneous: bool = False,
    ties: str = "half",
    reweight: bool = False,
    style: StyleBattles | None = None,
    beta_l2: float = 0.5,
    theta0: np.ndarray | None = None,
) -> Leaderboard:
    """Fit, intervals and ranks. ``anchor`` = (model index, rating).

    ``pc``: the battles aggregated (with ``style``: the same battles as
    ``style`` holds, aggregated; they give the counts and the diagnostics).
    ``lower``/``upper``/``rank`` are always the marginal (per-model) 95%
    intervals; ``simultaneous=True`` adds ``sim_lower``/``sim_upper``/
    ``sim_rank``. ``ties="davidson"`` fits Davidson's tie model
    (``ratings.core.davidson``); ``style`` fits contextual BT with
    ``beta_l2`` on the coefficients. ``reweight``: each battle weighs
    1/max(n_pair, 50) (a ``pc`` already reweighted keeps its weights).

    Every interval is computed on the centred scale; the anchor then shifts
    ratings and bounds alike, so it never changes a width. With ``names``
    the models are processed in name order, so two callers that index the
    same models differently (the database by id, a file by first appearance)
    get the same bootstrap draws and simultaneous critical value.
    """
    if ci not in CI_METHODS:
        raise ValueError(f"unknown interval method {ci!r}")
    if ties not in TIE_MODELS:
        raise ValueError(f"unknown tie model {ties!r}")
    if style is not None and ties != "half":
        raise ValueError("style control counts a tie as half a win; Davidson's tie model is not available with it")
    if anchor is not None and not 0 <= anchor[0] < pc.n_models:
        raise ValueError(f"anchor model index {anchor[0]} out of range")
    if names is None:
        return _leaderboard(
            pc, names, ci, rounds, seed, l2, anchor, simultaneous, ties, reweight, style, beta_l2, theta0
        )
    # Relabel to name order, compute, relabel back.
    perm = np.argsort(np.array(names, dtype=object), kind="stable")
    pos = np.empty(len(perm), dtype=np.int64)
    pos[perm] = np.arange(len(perm))
    cpc = PairCounts(pc.n_models, pos[pc.a], pos[pc.b], pc.y, pc.count, pc.weight, pc.n_self)
    cstyle = None
    if style is not None:
        cstyle = StyleBattles(
            pos[np.asarray(style.a, dtype=np.int64)],
            pos[np.asarray(style.b, dtype=np.int64)],
            style.y,
            style.features,
            style.count,
        )
    lb = _leaderboard(
        cpc,
        [names[i] for i in perm],
        ci,
        rounds,
        seed,
        l2,
        None if anchor is None else (int(pos[anchor[0]]), anchor[1]),
        simultaneous,
        ties,
        reweight,
        cstyle,
        beta_l2,
        None if theta0 is None else np.asarray(theta0, dtype=float)[perm],
    )
    for name in (
        "rating",
        "lower",
        "upper",
        "rank",
        "theta",
        "battles",
        "wins",
        "losses",
        "ties",
        "active",
        "sim_lower",
        "sim_upper",
        "sim_rank",
    ):
        value = getattr(lb, name)
        if value is not None:
            setattr(lb, name, value[pos])
    lb.fit.theta = lb.theta
    lb.flags = {int(perm[k]): v for k, v in lb.flags.items()}
    lb.anchor = anchor
    return lb


def _leaderboard(pc, names, ci, rounds, seed, l2, anchor, simultaneous, ties, reweight, style, beta_l2, theta0):
    t0 = time.perf_counter()
    n = pc.n_models
    diag = diagnose(pc, names)
    active = diag.battles > 0
    if reweight:
        pc = reweighted(pc)
    used_l2 = l2
    warnings = list(diag.warnings)
    if not diag.mle_exists and l2 == 0.0:
        used_l2 = FALLBACK_L2
        warnings.append(f"maximum-likelihood ratings do not exist for this data; fitted with L2 penalty {FALLBACK_L2}")
    if ties == "davidson" and not np.any(pc.count[pc.y != 0.5] > 0):
        # every battle a tie: Davidson's nu runs off to infinity and no rating is
        # identified, so this view falls back to ties as half (all equal)
        warnings.append("every battle is a tie: Davidson's model has no estimate; ties counted as half instead")
        ties = "half"
    dav = sfit = None
    cov = None
    tie_param = None
    style_coefficients = None
    if style is not None:
        weight = battle_weights(style.a, style.b, _count(style), n) if reweight else None
        sfit = fit_style_bt(
            style.a,
            style.b,
            style.y,
            style.features,
            n,
            l2=used_l2,
            beta_l2=beta_l2,
            weight=weight,
            count=style.count,
            intervals=ci == "sandwich",
            theta0=theta0,
        )
        theta, cov = sfit.theta, sfit.cov_theta
        fit = BTFit(
            theta=theta, l2=used_l2, iterations=sfit.iterations, grad_norm=sfit.grad_norm, converged=sfit.converged
        )
        style_coefficients = {k: float(v) for k, v in zip(STYLE_FEATURES, sfit.beta, strict=True)}
        model = "contextual_bt"
    elif ties == "davidson":
        dav = davidson.fit_davidson(pc, l2=used_l2, active=active)
        warnings += dav.warnings
        theta = dav.theta
        fit = BTFit(
            theta=theta, l2=used_l2, iterations=dav.iterations, grad_norm=dav.grad_norm, converged=dav.converged
        )
        tie_param = {"nu": float(math.exp(dav.log_nu)), "lower": None, "upper": None}
        model = "davidson"
    else:
        fit = fit_bt(pc, l2=used_l2, active=active, theta0=theta0)
        theta = fit.theta
        model = "bt"
    # Everything below is on the centred scale; the anchor shift comes last.
    rating = theta_to_points(theta)
    t1 = time.perf_counter()
    sim_lower = sim_upper = sim_rank = None
    crit = None
    if ci == "sandwich":
        if dav is not None:
            full = davidson.sandwich_cov(pc, theta, dav.log_nu, used_l2)
            cov, var_k = full[:-1, :-1], float(full[-1, -1])
            half_k = Z95 * math.sqrt(max(var_k, 0.0))
            tie_param.update(lower=math.exp(dav.log_nu - half_k), upper=math.exp(dav.log_nu + half_k))
        elif sfit is None and simultaneous:
            cov = sandwich_cov(pc, theta, used_l2)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None)) if cov is not None else sandwich_se(pc, theta, used_l2)
        half = Z95 * se * POINTS_PER_THETA
        lower, upper = rating - half, rating + half
        if simultaneous:
            sim_lower, sim_upper, crit = simultaneous_sandwich(rating, cov, active)
    elif ci == "bootstrap":
        if sfit is not None:
            samples = _style_bootstrap(style, n, sfit, used_l2, beta_l2, rounds, seed, active, reweight)
        elif dav is not None:
            samples, log_nu = davidson.bootstrap_samples(
                pc, theta, dav.log_nu, l2=used_l2, rounds=rounds, seed=seed, active=active
            )
            if np.isfinite(log_nu).all():
                tie_param.update(
                    lower=float(np.exp(np.quantile(log_nu, 0.025))), upper=float(np.exp(np.quantile(log_nu, 0.975)))
                )
            else:  # no ties: nu is 0 in every round
                tie_param.update(lower=0.0, upper=0.0)
        else:
            samples = bootstrap_samples(pc, theta, l2=used_l2, rounds=rounds, seed=seed, active=active)
        lower, upper = np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)
        if simultaneous:
            sim_lower, sim_upper, crit = simultaneous_bootstrap(rating, samples, active)
    else:
        lower, upper = rating.copy(), rating.copy()
        if simultaneous:
            sim_lower, sim_upper = rating.copy(), rating.copy()
    shift = _shift_for_anchor(theta, anchor)
    if shift:
        rating, lower, upper = rating + shift, lower + shift, upper + shift
        if sim_lower is not None:
            sim_lower, sim_upper = sim_lower + shift, sim_upper + shift
    t2 = time.perf_counter()
    rank = np.zeros(n, dtype=np.int64)
    rank[active] = rank_ub(lower[active], upper[active])
    if sim_lower is not None:
        sim_rank = np.zeros(n, dtype=np.int64)
        sim_rank[active] = rank_ub(sim_lower[active], sim_upper[active])
    return Leaderboard(
        rating=rating, lower=lower, upper=upper, rank=rank, theta=theta,
        battles=diag.battles, wins=diag.wins, losses=diag.losses, ties=diag.ties, active=active,
        fit=fit, warnings=warnings, flags=diag.flags, ci=ci,
        timings={"fit": t1 - t0, "intervals": t2 - t1},
        sim_lower=sim_lower, sim_upper=sim_upper, sim_rank=sim_rank, critical_value=crit,
        tie_model=ties, tie_param=tie_param, model=model, anchor=anchor, shift=shift,
        style_coefficients=style_coefficients, reweighted=bool(reweight or np.any(pc.weight != 1.0)),
    )  # fmt: skip


def _count(style: StyleBattles) -> np.ndarray:
    return np.ones(len(style.a)) if style.count is None else np.asarray(style.count, dtype=float)


def _style_bootstrap(style, n, sfit, l2, beta_l2, rounds, seed, active, reweight) -> np.ndarray:
    """Bootstrap of contextual BT on a canonical row table: identical battles
    merged into one row with their count, rows sorted by (a, b, y, features).
    Callers that hold the same battles in another order (the database, a
    file) then draw the same resamples from the same seed."""
    a = np.asarray(style.a, dtype=np.int64)
    b = np.asarray(style.b, dtype=np.int64)
    y = np.asarray(style.y, dtype=float)
    f = np.asarray(style.features, dtype=float)
    c = _count(style)
    order = np.lexsort((*f.T[::-1], y, b, a))
    a, b, y, f, c = a[order], b[order], y[order], f[order], c[order]
    if len(a):
        new = np.ones(len(a), dtype=bool)
        new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (y[1:] != y[:-1]) | np.any(f[1:] != f[:-1], axis=1)
        starts = np.flatnonzero(new)
        a, b, y, f, c = a[starts], b[starts], y[starts], f[starts], np.add.reduceat(c, starts)
    weight = battle_weights(a, b, c, n) if reweight else None
    return style_bootstrap_samples(
        a,
        b,
        y,
        f,
        n,
        sfit.theta,
        sfit.beta,
        l2=l2,
        beta_l2=beta_l2,
        rounds=rounds,
        seed=seed,
        active=active,
        weight=weight,
        count=c,
    )
