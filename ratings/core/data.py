"""Battles as arrays: units, aggregation by (a, b, outcome), reweighting,
when the maximum-likelihood estimate exists, per-model counts and matrices,
and the per-battle style features.

Pure numpy; no Django. Models are integer indices ``0 .. n_models-1``.

Units, used throughout ``ratings.core``:
- ``theta``: natural-log strength, P(a beats b) = sigmoid(theta_a - theta_b).
- rating points: R = theta * 400 / ln 10 + 1000 (base 10, scale 400, init 1000).

Outcomes ``y`` are the score of model a: 1 (a won), 0 (b won), 0.5 (tie or
both bad).
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
REWEIGHT_FLOOR = 50


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


def battle_weights(
    a: np.ndarray, b: np.ndarray, count: np.ndarray, n_models: int, floor: int = REWEIGHT_FLOOR
) -> np.ndarray:
    """``reweighted`` for battles that stay one row each (style control): each
    battle weighs 1 / max(n_pair, floor), n_pair = battles (sum of ``count``)
    of its unordered pair."""
    key = np.minimum(a, b) * n_models + np.maximum(a, b)
    _, inv = np.unique(key, return_inverse=True)
    n_pair = np.bincount(inv, weights=count)[inv]
    return 1.0 / np.maximum(n_pair, floor)


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
# sums over pairs (the Hessians are weighted graph Laplacians)


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


# --------------------------------------------------------------------------
# style features (contextual Bradley–Terry's covariates)


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
