"""Davidson's tie model: Bradley–Terry with ties as a third outcome.

Davidson (1970), "On extending the Bradley-Terry model to accommodate ties
in paired comparison experiments", JASA 65(329):317-328. With strengths
pi = exp(theta) and tie parameter nu >= 0:

    P(i beats j) = pi_i / (pi_i + pi_j + nu * sqrt(pi_i * pi_j))
    P(tie)       = nu * sqrt(pi_i * pi_j) / (same denominator)

Dividing through by sqrt(pi_i * pi_j), with d = theta_i - theta_j and
kappa = log(nu):

    P(i wins) = e^(d/2) / D,  P(j wins) = e^(-d/2) / D,  P(tie) = e^kappa / D,
    D = e^(d/2) + e^(-d/2) + e^kappa.

So P(i wins | not a tie) = sigmoid(d): theta is on the same scale as the
ties-as-half Bradley–Terry ratings (and the same rating points), but a tie
is evidence of nearness, not half a win. With nu = 0 it is Bradley–Terry.

Pure numpy, like the rest of ``ratings.core``; the fit is the core's damped
Newton solver (``models.damped_newton``) on (wins, losses, ties) per unordered
pair, the parameters (theta, kappa).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import data as _data
from . import intervals as _intervals
from . import models as _models
from .data import PairCounts


@dataclass
class DavidsonFit:
    theta: np.ndarray  # natural-log strengths, mean zero over rated models
    log_nu: float  # kappa; -inf when the data hold no ties (nu = 0: Bradley–Terry)
    iterations: int
    grad_norm: float
    converged: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def nu(self) -> float:
        return math.exp(self.log_nu) if math.isfinite(self.log_nu) else 0.0


def pair_outcomes(pc: PairCounts, power: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wins, ties, losses) of each unordered pair's first model, each battle
    counted with weight**power (1: the likelihood's counts; 2: the sandwich's meat)."""
    pa, _, inv, score_lo = pc.pair_map
    wc = pc.count * pc.weight**power
    n_pairs = len(pa)
    return (
        np.bincount(inv, wc * (score_lo == 1.0), n_pairs),
        np.bincount(inv, wc * (score_lo == 0.5), n_pairs),
        np.bincount(inv, wc * (score_lo == 0.0), n_pairs),
    )


def probabilities(d: np.ndarray, kappa: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(P(first wins), P(tie), P(second wins), log D) for strength gaps d, without overflow."""
    half = 0.5 * np.asarray(d, dtype=float)
    m = np.maximum(np.abs(half), kappa)
    ew, el, et = np.exp(half - m), np.exp(-half - m), np.exp(kappa - m)
    den = ew + el + et
    return ew / den, et / den, el / den, m + np.log(den)


def _terms(pa, pb, w, t, l, n, theta, kappa):
    """NLL, gradient and Hessian over (theta, kappa), without penalty."""
    c = w + t + l
    d = theta[pa] - theta[pb]
    pw, pt, pl, log_d = probabilities(d, kappa)
    nll = float(-(w - l) @ d * 0.5 - t.sum() * kappa + c @ log_d)
    g_d = -0.5 * (w - l) + 0.5 * c * (pw - pl)
    grad = np.empty(n + 1)
    grad[:n] = np.bincount(pa, g_d, n) - np.bincount(pb, g_d, n)
    grad[n] = float((c * pt).sum() - t.sum())
    hess = np.zeros((n + 1, n + 1))
    hess[:n, :n] = _data._laplacian(pa, pb, 0.25 * c * (pw + pl - (pw - pl) ** 2), n)
    h_dk = -0.5 * c * (pw - pl) * pt
    cross = np.bincount(pa, h_dk, n) - np.bincount(pb, h_dk, n)
    hess[:n, n] = hess[n, :n] = cross
    hess[n, n] = float((c * pt * (1.0 - pt)).sum())
    return nll, grad, hess


def fit_pair_outcomes(
    pa: np.ndarray,
    pb: np.ndarray,
    w: np.ndarray,
    t: np.ndarray,
    l: np.ndarray,
    n: int,
    *,
    l2: float,
    active: np.ndarray,
    theta0: np.ndarray | None = None,
    kappa0: float | None = None,
    max_iter: int = 100,
    gtol: float = 1e-10,
) -> DavidsonFit:
    """Newton on unordered pairs: pa won w, tied t and lost l battles against pb.

    ``l2`` is ratings.core.models' penalty on theta (none on kappa). Needs at
    least one tie and one decisive battle: with no ties the MLE of nu is 0
    and this returns the Bradley–Terry fit with kappa = -inf.
    """
    total = max(float((w + t + l).sum()), 1.0)
    n_ties, n_decisive = float(t.sum()), float((w + l).sum())
    if n_ties <= 0.0:
        bt = _models.fit_pairs(pa, pb, w + l, w, n, l2=l2, theta0=theta0, active=active, max_iter=max_iter, gtol=gtol)
        return DavidsonFit(
            bt.theta,
            -math.inf,
            bt.iterations,
            bt.grad_norm,
            bt.converged,
            ["no ties in the data: Davidson's nu is 0, the fit is Bradley–Terry"],
        )
    if n_decisive <= 0.0:
        raise ValueError("Davidson's tie model needs at least one decisive battle (every battle here is a tie)")
    lam = _models._theta_penalty(l2)
    if theta0 is None:
        theta0 = _models.fit_pairs(pa, pb, w + t + l, w + 0.5 * t, n, l2=l2, theta0=None, active=active).theta
    if kappa0 is None or not math.isfinite(kappa0):
        share = n_ties / total  # equal strengths: P(tie) = nu / (2 + nu)
        kappa0 = math.log(2.0 * share / max(1.0 - share, 1e-12))
    idle = ~active
    extra = _models._centring(active, n + 1, lam)
    extra[np.diag_indices(n + 1)] += np.concatenate([lam + idle.astype(float), [0.0]])

    def objective(x):
        nll, g, h = _terms(pa, pb, w, t, l, n, x[:n], x[n])
        g[:n] += lam * x[:n]
        return nll + 0.5 * lam * float(x[:n] @ x[:n]), (g, h)

    x0 = np.concatenate([np.asarray(theta0, dtype=float), [float(kappa0)]])
    res = _models.damped_newton(
        x0,
        objective,
        lambda x, state: state[0],
        lambda x, state: state[1] + extra,
        tol=gtol * total,
        max_iter=max_iter,
        frozen=np.concatenate([idle, [False]]),
    )
    theta, kappa = res.x[:n].copy(), float(res.x[n])
    if active.any():
        theta[active] -= theta[active].mean()
    theta[idle] = 0.0
    return DavidsonFit(theta, kappa, res.iterations, res.grad_norm, res.grad_norm <= gtol * total * 10)


def fit_davidson(pc: PairCounts, *, l2: float = 0.0, active: np.ndarray | None = None, **kw) -> DavidsonFit:
    """Davidson's model on aggregated battles (a tie is a row with y = 0.5)."""
    n = pc.n_models
    if active is None:
        battles = np.bincount(pc.a, pc.count, n) + np.bincount(pc.b, pc.count, n)
        active = battles > 0
    pa, pb, _, _ = pc.pair_map
    w, t, l = pair_outcomes(pc)
    return fit_pair_outcomes(pa, pb, w, t, l, n, l2=l2, active=active, **kw)


def sandwich_cov(pc: PairCounts, theta: np.ndarray, log_nu: float, l2: float = 0.0) -> np.ndarray:
    """Sandwich covariance of (theta, kappa), (n + 1) x (n + 1), kappa last.

    Bread: the Hessian of the weighted NLL (it does not depend on the
    outcomes) plus the engine's ridge eps = 1e-5 x battles on the thetas;
    meat: the sum over battles of the outer product of each battle's score.
    With no ties (kappa = -inf) it is the Bradley–Terry sandwich and kappa's
    row and column are zero.
    """
    n = pc.n_models
    if not math.isfinite(log_nu):
        out = np.zeros((n + 1, n + 1))
        out[:n, :n] = _intervals.sandwich_cov(pc, theta, l2)
        return out
    pa, pb, _, _ = pc.pair_map
    w, t, l = pair_outcomes(pc)
    _, _, hess = _terms(pa, pb, w, t, l, n, theta, log_nu)
    hess[np.diag_indices(n)] += _models._theta_penalty(l2) + _intervals.SANDWICH_EPS_PER_BATTLE * float(
        pc.effective.sum()
    )
    w2, t2, l2_ = pair_outcomes(pc, power=2)
    pw, pt, pl, _ = probabilities(theta[pa] - theta[pb], log_nu)
    mid = 0.5 * (pw - pl)
    # each battle's score (gradient of its NLL) in (d, kappa), by outcome
    s_d = {"w": mid - 0.5, "t": mid, "l": mid + 0.5}
    s_k = {"w": pt, "t": pt - 1.0, "l": pt}
    counts = {"w": w2, "t": t2, "l": l2_}
    meat = np.zeros((n + 1, n + 1))
    dd = sum(counts[o] * s_d[o] ** 2 for o in counts)
    dk = sum(counts[o] * s_d[o] * s_k[o] for o in counts)
    meat[:n, :n] = _data._laplacian(pa, pb, dd, n)
    cross = np.bincount(pa, dk, n) - np.bincount(pb, dk, n)
    meat[:n, n] = meat[n, :n] = cross
    meat[n, n] = float(sum(counts[o] * s_k[o] ** 2 for o in counts).sum())
    return _intervals._sandwich_cov(hess, meat, n)


def bootstrap_samples(
    pc: PairCounts,
    theta: np.ndarray,
    log_nu: float,
    *,
    l2: float,
    rounds: int,
    seed: int | None,
    anchor: tuple[int, float] | None = None,
    active: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Davidson refits on the engine's pair resamples: ((rounds, models) rating
    points, (rounds,) kappa). The same draws as the Bradley–Terry bootstrap.
    Each round is centred; ``anchor`` only shifts every round by the full
    fit's anchor shift (``ratings.core.intervals.bootstrap_samples``)."""
    n = pc.n_models
    if not math.isfinite(log_nu):
        samples = _intervals.bootstrap_samples(pc, theta, l2=l2, rounds=rounds, seed=seed, anchor=anchor, active=active)
        return samples, np.full(rounds, -math.inf)
    pa, pb, _, _ = pc.pair_map
    w_pair = _intervals.pair_weights(pc)
    shift = _intervals._shift_for_anchor(theta, anchor)
    samples = np.empty((rounds, n))
    kappas = np.empty(rounds)
    for r, (n_ab, wins, ties) in enumerate(_intervals.pair_resamples(pc, rounds, seed)):
        losses = n_ab - wins - ties
        sub_l2 = l2
        if l2 == 0.0:  # a model that never scored or never conceded: the MLE does not exist
            scored = np.bincount(pa, wins + ties, n) + np.bincount(pb, losses + ties, n)
            conceded = np.bincount(pa, losses + ties, n) + np.bincount(pb, wins + ties, n)
            if np.any(active & ((scored == 0) | (conceded == 0))):
                sub_l2 = _models.FALLBACK_L2
        args = (pa, pb, wins * w_pair, ties * w_pair, losses * w_pair, n)
        fit = fit_pair_outcomes(
            *args, l2=sub_l2, active=active, theta0=theta, kappa0=log_nu, gtol=_intervals.BOOTSTRAP_GTOL
        )
        if not fit.converged and sub_l2 == 0.0:
            fit = fit_pair_outcomes(
                *args,
                l2=_models.FALLBACK_L2,
                active=active,
                theta0=theta,
                kappa0=log_nu,
                gtol=_intervals.BOOTSTRAP_GTOL,
            )
        samples[r] = _data.theta_to_points(fit.theta) + shift
        kappas[r] = fit.log_nu
    return samples, kappas


def log_loss(theta: np.ndarray, log_nu: float, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of three-way outcomes (y = 1, 0.5, 0 for a won, tie, b won)."""
    pw, pt, pl, _ = probabilities(theta[a] - theta[b], log_nu if math.isfinite(log_nu) else -745.0)
    p = np.where(y == 1.0, pw, np.where(y == 0.0, pl, pt))
    return float(-np.mean(np.log(np.clip(p, 1e-300, None))))
