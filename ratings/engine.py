"""The rating core: Bradley–Terry, intervals, Elo and style control in numpy.

Pure numpy; no Django, no pandas/scipy. Models are integer indices
``0 .. n_models-1``; callers map names to indices (``ratings.selectors`` for
the database, ``ratings.battle_files`` for files).

Units, used throughout:
- ``theta``: natural-log strength, P(a beats b) = sigmoid(theta_a - theta_b).
- rating points: R = theta * 400 / ln 10 + 1000 (base 10, scale 400, init 1000).

Outcomes ``y`` are the score of model a: 1 (a won), 0 (b won), 0.5 (tie or
both bad). The method follows LMArena's (Chiang et al. 2024; arena-rank 0.1.1):
see docs/RATINGS.md for the formulas and conventions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
POINTS_PER_THETA = SCALE / math.log(BASE)  # 173.717... rating points per natural-log unit
Z95 = 1.959963984540054
# arena-rank's sandwich ridge: epsilon = 1e-5 x total battles on the Hessian diagonal.
SANDWICH_EPS_PER_BATTLE = 1e-5
# When the maximum-likelihood estimate does not exist (a model won or lost every
# battle, or the comparison graph falls apart), this weak L2 penalty (METHOD.md
# convention: (lambda/2) * sum(w^2), w in base-10 logit units) keeps every
# rating finite. It is only used in that case, and a warning says so.
FALLBACK_L2 = 0.01
REWEIGHT_FLOOR = 50
# Bootstrap refits stop at max|gradient| <= 1e-8 x battles: far below the
# noise of a 2.5% quantile, and a step or two cheaper than the headline fit.
BOOTSTRAP_GTOL = 1e-8


def theta_to_points(theta: np.ndarray) -> np.ndarray:
    return np.asarray(theta) * POINTS_PER_THETA + INIT_RATING


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; both branches are exact.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass(frozen=True)
class PairCounts:
    """Battles aggregated by (a, b, y): ``count`` battles of a vs b with score y.

    ``weight`` is the per-battle weight of each row (1 unless reweighted).
    Self-battles are never in here: ``n_self`` counts the ones dropped.
    """

    n_models: int
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    n_self: int = 0

    @property
    def total(self) -> float:
        return float(self.count.sum())

    @property
    def effective(self) -> np.ndarray:
        """Weighted count per row (what the likelihood sums over)."""
        return self.count * self.weight

    @cached_property
    def pair_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lo, hi, row -> pair index, score of lo in each row) over unordered pairs."""
        lo = np.minimum(self.a, self.b)
        hi = np.maximum(self.a, self.b)
        keys, inv = np.unique(lo * self.n_models + hi, return_inverse=True)
        score_lo = np.where(self.a == lo, self.y, 1.0 - self.y)
        return keys // self.n_models, keys % self.n_models, inv, score_lo

    def with_counts(self, count: np.ndarray) -> PairCounts:
        """Same rows, new counts (a bootstrap resample); shares the pair map."""
        new = PairCounts(self.n_models, self.a, self.b, self.y, count, self.weight, self.n_self)
        new.__dict__["pair_map"] = self.pair_map
        return new


def aggregate(
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
    n_models: int,
    count: np.ndarray | None = None,
) -> PairCounts:
    """Group battles by (a, b, y). ``count`` gives each input row's multiplicity.

    ``y`` must hold only 0, 0.5 and 1. Self-battles (a == b) are dropped and counted.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    mult = np.ones(len(a)) if count is None else np.asarray(count, dtype=np.float64)
    code = np.rint(y * 2).astype(np.int64)
    if len(code) and (code.min() < 0 or code.max() > 2 or not np.allclose(code, y * 2)):
        raise ValueError("outcomes must be 0, 0.5 or 1")
    self_mask = a == b
    n_self = int(mult[self_mask].sum())
    keep = ~self_mask
    key = (a[keep] * n_models + b[keep]) * 3 + code[keep]
    m = mult[keep]
    if n_models * n_models * 3 <= 20_000_000:
        summed = np.bincount(key, weights=m, minlength=n_models * n_models * 3)
        keys = np.flatnonzero(summed)
        counts = summed[keys]
    else:  # very many models: sort instead of a dense table
        keys, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse, weights=m)
        nz = counts > 0
        keys, counts = keys[nz], counts[nz]
    ycode = keys % 3
    pair = keys // 3
    return PairCounts(
        n_models=n_models,
        a=pair // n_models,
        b=pair % n_models,
        y=ycode / 2.0,
        count=counts,
        weight=np.ones(len(counts)),
        n_self=n_self,
    )


def from_rows(a, b, y, count, n_models: int) -> PairCounts:
    """Build PairCounts from rows that are already aggregated (e.g. by SQL)."""
    return aggregate(np.asarray(a), np.asarray(b), np.asarray(y, dtype=float), n_models, count=count)


def reweighted(pc: PairCounts, floor: int = REWEIGHT_FLOOR) -> PairCounts:
    """arena-rank's reweighting: each battle weighs 1 / max(n_pair, floor)."""
    _, _, inv, _ = pc.pair_map
    n_pair = np.bincount(inv, weights=pc.count)[inv]
    return PairCounts(pc.n_models, pc.a, pc.b, pc.y, pc.count, 1.0 / np.maximum(n_pair, floor), pc.n_self)


# --------------------------------------------------------------------------
# diagnostics: when does the MLE exist?


@dataclass
class Diagnostics:
    battles: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    component: np.ndarray  # undirected connected component id per model
    mle_exists: bool
    warnings: list[str] = field(default_factory=list)
    flags: dict[int, list[str]] = field(default_factory=dict)


def model_counts(pc: PairCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(battles, wins, losses, ties) per model, in raw battle counts."""
    n = pc.n_models
    c = pc.count
    win_a = c * (pc.y == 1.0)
    win_b = c * (pc.y == 0.0)
    tie = c * (pc.y == 0.5)
    battles = np.bincount(pc.a, c, n) + np.bincount(pc.b, c, n)
    wins = np.bincount(pc.a, win_a, n) + np.bincount(pc.b, win_b, n)
    losses = np.bincount(pc.a, win_b, n) + np.bincount(pc.b, win_a, n)
    ties = np.bincount(pc.a, tie, n) + np.bincount(pc.b, tie, n)
    return battles, wins, losses, ties


def _reach(adj: np.ndarray, start: int) -> np.ndarray:
    seen = np.zeros(adj.shape[0], dtype=bool)
    seen[start] = True
    frontier = seen.copy()
    while frontier.any():
        nxt = adj[frontier].any(axis=0) & ~seen
        seen |= nxt
        frontier = nxt
    return seen


def _components(adj: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Connected components of a symmetric boolean adjacency (-1 for inactive)."""
    comp = np.full(adj.shape[0], -1, dtype=np.int64)
    k = 0
    for i in np.flatnonzero(active):
        if comp[i] < 0:
            comp[_reach(adj, i)] = k
            k += 1
    return comp


def diagnose(pc: PairCounts, names: list[str] | None = None) -> Diagnostics:
    """Check Ford's condition: the MLE exists iff, within the comparison graph,
    every model can reach every other through "scored at least half a point
    against" edges (the win digraph is strongly connected)."""
    n = pc.n_models
    label = (lambda i: names[i]) if names is not None else (lambda i: f"#{i}")
    battles, wins, losses, ties = model_counts(pc)
    active = battles > 0
    beat = np.zeros((n, n), dtype=bool)  # beat[i, j]: i scored against j
    pos = pc.count > 0
    beat[pc.a[pos & (pc.y > 0)], pc.b[pos & (pc.y > 0)]] = True
    beat[pc.b[pos & (pc.y < 1)], pc.a[pos & (pc.y < 1)]] = True
    undirected = beat | beat.T
    comp = _components(undirected, active)
    diag = Diagnostics(battles, wins, losses, ties, comp, True)

    def flag(i: int, what: str) -> None:
        diag.flags.setdefault(int(i), []).append(what)

    n_comp = int(comp.max()) + 1 if active.any() else 0
    if n_comp > 1:
        diag.mle_exists = False
        sizes = np.bincount(comp[active])
        main = int(np.argmax(sizes))
        apart = [int(i) for i in np.flatnonzero(active & (comp != main))]
        for i in apart:
            flag(i, "disconnected")
        diag.warnings.append(
            f"comparison graph has {n_comp} disconnected parts; ratings across parts are "
            f"not comparable: {', '.join(label(i) for i in apart)} never met the main group"
        )
    for i in np.flatnonzero(active & (losses == 0) & (ties == 0)):
        diag.mle_exists = False
        flag(i, "only_wins")
        diag.warnings.append(f"{label(i)} won every battle ({int(wins[i])}); its rating is bounded by a penalty")
    for i in np.flatnonzero(active & (wins == 0) & (ties == 0)):
        diag.mle_exists = False
        flag(i, "only_losses")
        diag.warnings.append(f"{label(i)} lost every battle ({int(losses[i])}); its rating is bounded by a penalty")
    if diag.mle_exists and active.sum() > 1:
        # No single model is unbeaten or winless, but a group of them may be.
        for k in range(n_comp):
            members = np.flatnonzero(comp == k)
            sub = beat[np.ix_(members, members)]
            fwd = _reach(sub, 0)
            back = _reach(sub.T, 0)
            if not (fwd.all() and back.all()):
                diag.mle_exists = False
                top = members[~back] if not back.all() else members[back & fwd]
                for i in top:
                    flag(i, "separated")
                diag.warnings.append(
                    "some models never lost to (or never beat) the rest, so their ratings are "
                    f"bounded by a penalty: {', '.join(label(int(i)) for i in top)}"
                )
    for i in np.flatnonzero(active & (battles == 1)):
        flag(i, "one_battle")
        diag.warnings.append(f"{label(i)} has a single battle; its interval is very wide")
    return diag


# --------------------------------------------------------------------------
# Bradley–Terry maximum likelihood


@dataclass
class BTFit:
    theta: np.ndarray  # natural-log units, mean zero over rated models
    l2: float  # penalty actually used (METHOD.md convention)
    iterations: int
    grad_norm: float  # max |gradient| of the summed penalised NLL at the end
    converged: bool


def _laplacian(a: np.ndarray, b: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """sum_rows w * (e_a - e_b)(e_a - e_b)^T as a dense n x n matrix."""
    return _pair_laplacian(a * n + b, w, n)


def _pair_sums(pair: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """n x n matrix: sum of w over the rows of each ordered pair (pair = a * n + b)."""
    return np.bincount(pair, weights=w, minlength=n * n).reshape(n, n)


def _pair_laplacian(pair: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    off = _pair_sums(pair, w, n)
    off = off + off.T
    lap = -off
    lap[np.diag_indices(n)] += off.sum(axis=1)
    return lap


def _softplus_parts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exp(-|d|), softplus(d)) computed once and shared by loss and sigmoid."""
    e = np.exp(-np.abs(d))
    return e, np.maximum(d, 0.0) + np.log1p(e)


def _sigmoid_from(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    return np.where(d >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _theta_penalty(l2: float) -> float:
    """(l2/2) sum w^2 with w = theta/ln10  ->  (lam/2) sum theta^2."""
    return l2 / math.log(BASE) ** 2


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
    theta = np.zeros(n) if theta0 is None else np.array(theta0, dtype=float)
    total = max(float(big_c.sum()), 1.0)
    idle = ~active
    # Inactive models have an all-zero Laplacian row: give them a unit diagonal
    # so the system stays solvable; their gradient is zero, so they never move.
    centre = np.zeros((n, n))
    if lam == 0.0:
        centre[np.ix_(active, active)] = 1.0

    def evaluate(th: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        d = th[pa] - th[pb]
        e, sp = _softplus_parts(d)
        return float(big_c @ sp - big_s @ d + 0.5 * lam * float(th @ th)), d, e

    obj, d, e = evaluate(theta)
    grad_norm = math.inf
    it = 0
    for it in range(1, max_iter + 1):
        p = _sigmoid_from(d, e)
        r = big_s - big_c * p
        grad = np.bincount(pb, r, n) - np.bincount(pa, r, n) + lam * theta
        grad_norm = float(np.abs(grad).max()) if n else 0.0
        if grad_norm <= gtol * total:
            it -= 1
            break
        hess = _laplacian(pa, pb, big_c * p * (1.0 - p), n)
        hess[np.diag_indices(n)] += lam + idle
        step = np.linalg.solve(hess + centre, -grad)
        # Backtracking keeps each step a descent step far from the optimum; the
        # relative slack stops it fighting rounding noise next to the optimum.
        t = 1.0
        while True:
            cand = theta + t * step
            cand_obj, cand_d, cand_e = evaluate(cand)
            if cand_obj <= obj + 1e-4 * t * float(grad @ step) + 1e-12 * abs(obj) or t < 1e-8:
                break
            t *= 0.5
        theta, obj, d, e = cand, cand_obj, cand_d, cand_e
    if active.any():
        theta[active] -= theta[active].mean()
    theta[idle] = 0.0
    return BTFit(theta=theta, l2=l2, iterations=it, grad_norm=grad_norm, converged=grad_norm <= gtol * total * 10)


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


# --------------------------------------------------------------------------
# the leaderboard in one call


@dataclass
class Leaderboard:
    rating: np.ndarray  # rating points
    lower: np.ndarray
    upper: np.ndarray
    rank: np.ndarray
    theta: np.ndarray
    battles: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray
    active: np.ndarray
    fit: BTFit
    warnings: list[str]
    flags: dict[int, list[str]]
    ci: str
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
    anchor: tuple[int, float] | None,
    active: np.ndarray,
) -> np.ndarray:
    """Bradley–Terry refits on ``pair_resamples``: (rounds, models) in rating points.

    Each refit starts from the full-data optimum and is normalised like the
    main fit (centred, or shifted to the anchor).
    """
    n = pc.n_models
    pa, pb, _, _ = pc.pair_map
    w_pair = pair_weights(pc)
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
        samples[r] = theta_to_points(fit.theta) + _shift_for_anchor(fit.theta, anchor)
    return samples


def bootstrap_bounds(
    pc: PairCounts,
    theta: np.ndarray,
    *,
    l2: float,
    rounds: int,
    seed: int | None,
    anchor: tuple[int, float] | None,
    active: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """2.5% / 97.5% quantiles of the rating over ``bootstrap_samples``."""
    samples = bootstrap_samples(pc, theta, l2=l2, rounds=rounds, seed=seed, anchor=anchor, active=active)
    return np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)


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


def max_abs_quantile(cov: np.ndarray, *, level: float = LEVEL, draws: int | None = None,
                     seed: int = SIMULTANEOUS_SEED) -> float:
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
        top[start:start + k] = np.abs(z).max(axis=1)
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


def simultaneous_sandwich(rating: np.ndarray, cov_theta: np.ndarray, active: np.ndarray,
                          level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, float]:
    """rating ± c·se with c the max-|z| quantile of the fitted normal over the rated models.
    Returns (lower, upper, c)."""
    idx = np.flatnonzero(active)
    c = max_abs_quantile(cov_theta[np.ix_(idx, idx)], level=level)
    half = c * np.sqrt(np.clip(np.diag(cov_theta), 0.0, None)) * POINTS_PER_THETA
    return rating - half, rating + half, c


def simultaneous_bootstrap(rating: np.ndarray, samples: np.ndarray, active: np.ndarray,
                           level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, float]:
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
) -> Leaderboard:
    """Fit BT and compute intervals and ranks. ``anchor`` = (model index, rating).

    ``lower``/``upper``/``rank`` are always the marginal (per-model) 95%
    intervals; ``simultaneous=True`` adds ``sim_lower``/``sim_upper``/
    ``sim_rank``. ``ties="davidson"`` fits Davidson's tie model instead of
    counting a tie as half a win (``ratings.davidson``).
    """
    import time

    if ci not in ("sandwich", "bootstrap", "none"):
        raise ValueError(f"unknown interval method {ci!r}")
    if ties not in ("half", "davidson"):
        raise ValueError(f"unknown tie model {ties!r}")
    t0 = time.perf_counter()
    diag = diagnose(pc, names)
    active = diag.battles > 0
    used_l2 = l2
    warnings = list(diag.warnings)
    if not diag.mle_exists and l2 == 0.0:
        used_l2 = FALLBACK_L2
        warnings.append(f"maximum-likelihood ratings do not exist for this data; fitted with L2 penalty {FALLBACK_L2}")
    dav = None
    if ties == "davidson" and not np.any(pc.count[pc.y != 0.5] > 0):
        # every battle a tie: Davidson's nu runs off to infinity and no rating is
        # identified, so this view falls back to ties as half (all equal)
        warnings.append("every battle is a tie: Davidson's model has no estimate; ties counted as half instead")
        ties = "half"
    if ties == "davidson":
        from . import davidson  # imports this module; the math stays Django-free

        dav = davidson.fit_davidson(pc, l2=used_l2, active=active)
        warnings += dav.warnings
        theta = dav.theta
    else:
        fit = fit_bt(pc, l2=used_l2, active=active)
        theta = fit.theta
    shift = _shift_for_anchor(theta, anchor)
    rating = theta_to_points(theta) + shift
    t1 = time.perf_counter()
    sim_lower = sim_upper = sim_rank = None
    crit = None
    tie_param = None
    if dav is not None:
        fit = BTFit(theta=theta, l2=used_l2, iterations=dav.iterations, grad_norm=dav.grad_norm,
                    converged=dav.converged)
        tie_param = {"nu": float(math.exp(dav.log_nu)), "lower": None, "upper": None}
    if ci == "sandwich":
        if dav is not None:
            full = davidson.sandwich_cov(pc, theta, dav.log_nu, used_l2)
            cov, var_k = full[:-1, :-1], float(full[-1, -1])
            half_k = Z95 * math.sqrt(max(var_k, 0.0))
            tie_param.update(lower=math.exp(dav.log_nu - half_k), upper=math.exp(dav.log_nu + half_k))
        else:
            cov = sandwich_cov(pc, theta, used_l2) if simultaneous else None
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None)) if cov is not None else sandwich_se(pc, theta, used_l2)
        half = Z95 * se * POINTS_PER_THETA
        lower, upper = rating - half, rating + half
        if simultaneous:
            sim_lower, sim_upper, crit = simultaneous_sandwich(rating, cov, active)
    elif ci == "bootstrap":
        if dav is not None:
            samples, log_nu = davidson.bootstrap_samples(
                pc, theta, dav.log_nu, l2=used_l2, rounds=rounds, seed=seed, anchor=anchor, active=active
            )
            if np.isfinite(log_nu).all():
                tie_param.update(lower=float(np.exp(np.quantile(log_nu, 0.025))),
                                 upper=float(np.exp(np.quantile(log_nu, 0.975))))
            else:  # no ties: nu is 0 in every round
                tie_param.update(lower=0.0, upper=0.0)
        else:
            samples = bootstrap_samples(
                pc, theta, l2=used_l2, rounds=rounds, seed=seed, anchor=anchor, active=active
            )
        lower, upper = np.quantile(samples, 0.025, axis=0), np.quantile(samples, 0.975, axis=0)
        if simultaneous:
            sim_lower, sim_upper, crit = simultaneous_bootstrap(rating, samples, active)
    else:
        lower, upper = rating.copy(), rating.copy()
        if simultaneous:
            sim_lower, sim_upper = rating.copy(), rating.copy()
    t2 = time.perf_counter()
    rank = np.zeros(pc.n_models, dtype=np.int64)
    rank[active] = rank_ub(lower[active], upper[active])
    if sim_lower is not None:
        sim_rank = np.zeros(pc.n_models, dtype=np.int64)
        sim_rank[active] = rank_ub(sim_lower[active], sim_upper[active])
    return Leaderboard(
        rating=rating,
        lower=lower,
        upper=upper,
        rank=rank,
        theta=theta,
        battles=diag.battles,
        wins=diag.wins,
        losses=diag.losses,
        ties=diag.ties,
        active=active,
        fit=fit,
        warnings=warnings,
        flags=diag.flags,
        ci=ci,
        timings={"fit": t1 - t0, "intervals": t2 - t1},
        sim_lower=sim_lower,
        sim_upper=sim_upper,
        sim_rank=sim_rank,
        critical_value=crit,
        tie_model=ties,
        tie_param=tie_param,
    )


# --------------------------------------------------------------------------
# matrices for the leaderboard views


def count_matrix(pc: PairCounts) -> np.ndarray:
    """Battles between each pair (symmetric)."""
    n = pc.n_models
    m = np.bincount(pc.a * n + pc.b, weights=pc.count, minlength=n * n).reshape(n, n)
    return m + m.T


def observed_winrate(pc: PairCounts) -> np.ndarray:
    """Share of points i scored against j (a tie is half a point); NaN where they never met."""
    n = pc.n_models
    pts_a = np.bincount(pc.a * n + pc.b, weights=pc.count * pc.y, minlength=n * n).reshape(n, n)
    pts_b = np.bincount(pc.b * n + pc.a, weights=pc.count * (1 - pc.y), minlength=n * n).reshape(n, n)
    games = count_matrix(pc)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(games > 0, (pts_a + pts_b) / games, np.nan)


def predicted_winrate(theta: np.ndarray) -> np.ndarray:
    """P(i beats j) under the fitted model."""
    return sigmoid(theta[:, None] - theta[None, :])


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


# --------------------------------------------------------------------------
# style control: contextual Bradley–Terry


STYLE_FEATURES = ("tokens", "headers", "list_items", "bold")


def style_design(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Per-battle style features: (x_a - x_b) / (x_a + x_b + 1), z-scored per column.

    ``xa``, ``xb``: (battles, 4) raw counts for the two responses. Returns
    (battles, 4); a transposed view of ``style_rows``.
    """
    return style_rows(np.asarray(xa).T, np.asarray(xb).T).T


def style_rows(xa, xb) -> np.ndarray:
    """style_design with one row per feature: ``xa``, ``xb`` are sequences of
    per-battle count arrays (one per feature), the result is (4, battles).
    fit_style_bt works on this layout; pass it as ``rows.T`` (no copy)."""
    n = len(xa[0]) if len(xa) else 0
    out = np.empty((len(xa), n))
    for j, (ca, cb) in enumerate(zip(xa, xb, strict=True)):
        ca = np.asarray(ca, dtype=float)
        cb = np.asarray(cb, dtype=float)
        f = out[j]
        np.divide(ca - cb, ca + cb + 1.0, out=f)
        if n:
            f -= f.mean()
            std = f.std()
            if std > 0:
                f /= std
    return out


@dataclass
class StyleFit:
    theta: np.ndarray
    beta: np.ndarray
    se_theta: np.ndarray | None
    iterations: int
    grad_norm: float
    cov_theta: np.ndarray | None = None  # sandwich covariance of theta (for simultaneous intervals)


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
    intervals: bool = True,
    max_iter: int = 100,
    gtol: float = 1e-10,
    theta0: np.ndarray | None = None,
) -> StyleFit:
    """Contextual BT: logit = theta_a - theta_b + beta . f, per battle (no aggregation).

    ``beta_l2``: (beta_l2/2)*|beta|^2 on the summed loss (FastChat's 0.5);
    ``l2`` as in fit_bt for theta. Self-battles must be removed by the caller.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    y = np.asarray(y, dtype=float)
    # One row per feature: contiguous rows make the per-feature passes cheap.
    ft = np.ascontiguousarray(np.asarray(features, dtype=float).T)
    n, k = n_models, ft.shape[0]
    w = np.ones(len(a)) if weight is None else np.asarray(weight, dtype=float)
    lam = _theta_penalty(l2)
    # Every per-model sum below is one bincount over the ordered pair code
    # (then row sums minus column sums), not one per side.
    pair = a * n + b
    battles = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    active = battles > 0
    # Starting from the plain BT ratings saves most of the Newton steps.
    theta = np.zeros(n) if theta0 is None else np.array(theta0, dtype=float)
    beta = np.zeros(k)
    total = max(float(w.sum()), 1.0)
    wy = w * y

    def by_model(values: np.ndarray) -> np.ndarray:
        """sum over rows with model i as a, minus sum over rows with i as b."""
        m = _pair_sums(pair, values, n)
        return m.sum(axis=1) - m.sum(axis=0)

    def objective(th: np.ndarray, be: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        d = (th[:, None] - th[None, :]).ravel()[pair] + be @ ft
        e, sp = _softplus_parts(d)
        return float(w @ sp - wy @ d + 0.5 * lam * th @ th + 0.5 * beta_l2 * be @ be), d, e

    def hessian(weights: np.ndarray) -> np.ndarray:
        h = np.zeros((n + k, n + k))
        h[:n, :n] = _pair_laplacian(pair, weights, n)
        for j in range(k):
            h[:n, n + j] = by_model(weights * ft[j])
        h[n:, :n] = h[:n, n:].T
        h[n:, n:] = (ft * weights) @ ft.T
        return h

    centre = np.zeros((n + k, n + k))
    if lam == 0.0:
        centre[np.ix_(active, active)] = 1.0
    obj, d, e = objective(theta, beta)
    grad_norm = math.inf
    it = 0
    for it in range(1, max_iter + 1):
        p = _sigmoid_from(d, e)
        r = w * (y - p)
        g = np.concatenate([-by_model(r) + lam * theta, -(ft @ r) + beta_l2 * beta])
        grad_norm = float(np.abs(g).max())
        if grad_norm <= gtol * total:
            it -= 1
            break
        h = hessian(w * p * (1.0 - p))
        h[np.diag_indices(n + k)] += np.concatenate([lam + (~active), np.full(k, beta_l2)])
        step = np.linalg.solve(h + centre, -g)
        t = 1.0
        while True:
            th, be = theta + t * step[:n], beta + t * step[n:]
            cand, cd, ce = objective(th, be)
            if cand <= obj + 1e-4 * t * float(g @ step) + 1e-12 * abs(obj) or t < 1e-8:
                break
            t *= 0.5
        theta, beta, obj, d, e = th, be, cand, cd, ce
    theta[active] -= theta[active].mean()
    se = None
    if intervals:
        p = sigmoid((theta[:, None] - theta[None, :]).ravel()[pair] + beta @ ft)
        h = hessian(w * p * (1.0 - p))
        h[np.diag_indices(n + k)] += np.concatenate(
            [np.full(n, lam + SANDWICH_EPS_PER_BATTLE * total), np.full(k, beta_l2)]
        )
        cov = _sandwich_cov(h, hessian((w * (y - p)) ** 2), n)[:n, :n]
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return StyleFit(theta=theta, beta=beta, se_theta=se, iterations=it, grad_norm=grad_norm,
                    cov_theta=cov if intervals else None)
