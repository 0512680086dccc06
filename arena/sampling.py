"""Pair sampling policies: which two models a new battle shows.

Pure functions over plain arrays so the live arena and the simulation in
bench/bench_sampling.py run the same code.

- weighted: FastChat's rule. First model with probability ∝ its weight
  (new models boosted, paused ones at 0), opponent likewise among the rest.
  The boost (boosted_weights) lasts while a model has fewer than
  RATINGS_MIN_VOTES battles, counting its excluded votes too.
- uniform: every unordered pair equally likely.
- active: the paper's rule (Chiang et al. 2024, §4): a pair with probability
  ∝ the shrink of its interval from one more vote, √(Σ/n) − √(Σ/(n+1)).
  Applied to the intervals the leaderboard publishes, the models' (see
  pair_weights_active); p = σ(θa − θb) comes from the newest ratings.
Sides are always shuffled by the caller.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

POLICIES = ("weighted", "uniform", "active")
NEW_MODEL_BOOST = 5.0  # FastChat boosts models still collecting their first votes


def boosted_weights(
    weights: Sequence[float], counted: Sequence[int], voted: Sequence[int], min_votes: int
) -> list[float]:
    """FastChat's new-model boost: a model's weight × NEW_MODEL_BOOST while it
    is still collecting its first ``min_votes`` battles.

    ``counted``: its battles in the newest snapshot (counted votes, imports
    included); ``voted``: its battles voted in the arena, counted or excluded.
    The boost ends when either reaches ``min_votes``: a model whose votes are
    all excluded (say its answers name it) never gets counted battles, and
    would otherwise keep the boost for ever and take a growing share of
    battles whose votes are thrown away.
    """
    return [w * (1.0 if max(c, v) >= min_votes else NEW_MODEL_BOOST) for w, c, v in zip(weights, counted, voted)]


def pair_weights_active(theta: Sequence[float], counts: dict[tuple[int, int], float], n: int) -> dict:
    """Active-sampling weight of each unordered pair i < j: how much one more
    vote on that pair narrows the two models' rating intervals.

    The paper's shrink √(Σ/n) − √(Σ/(n+1)) applied to what the leaderboard
    publishes, the models' intervals: model m's variance is ≈ 1/J_m with
    Fisher information J_m = Σ_k n_mk·p_mk(1 − p_mk), and a vote on (a, b)
    adds p_ab(1 − p_ab) to J_a and J_b. ``theta[i]``: current strength in
    natural-log units (0 before the first rating); ``counts[(i, j)]``, i < j:
    battles of that pair so far. A model with no information counts as having
    a quarter-vote, so unexplored models come first.
    """
    p = [[0.0] * n for _ in range(n)]
    info = [0.0] * n
    for i in range(n):
        for j in range(i + 1, n):
            pij = 1.0 / (1.0 + math.exp(-(theta[i] - theta[j])))
            p[i][j] = p[j][i] = pij * (1.0 - pij)
            c = counts.get((i, j), 0.0)
            info[i] += c * p[i][j]
            info[j] += c * p[i][j]
    info = [max(x, 0.0625) for x in info]
    weights = {}
    for i in range(n):
        for j in range(i + 1, n):
            v = p[i][j]
            weights[(i, j)] = (
                math.sqrt(1.0 / info[i])
                - math.sqrt(1.0 / (info[i] + v))
                + math.sqrt(1.0 / info[j])
                - math.sqrt(1.0 / (info[j] + v))
            )
    return weights


def pick_pair(
    policy: str,
    n: int,
    rng: random.Random,
    *,
    weights: Sequence[float] | None = None,
    theta: Sequence[float] | None = None,
    counts: dict[tuple[int, int], float] | None = None,
) -> tuple[int, int]:
    """Indices of two distinct models (unshuffled)."""
    if n < 2:
        raise ValueError("need at least two models")
    if policy == "uniform":
        i, j = rng.sample(range(n), 2)
        return i, j
    if policy == "weighted":
        w = list(weights) if weights is not None else [1.0] * n
        if sum(1 for x in w if x > 0) < 2:
            raise ValueError("need two models with positive weight")
        first = rng.choices(range(n), weights=w)[0]
        rest = [k for k in range(n) if k != first]
        second = rng.choices(rest, weights=[w[k] for k in rest])[0]
        return first, second
    if policy == "active":
        pw = pair_weights_active(theta if theta is not None else [0.0] * n, counts or {}, n)
        pairs = list(pw)
        total = sum(pw.values())
        if total <= 0:
            return pick_pair("uniform", n, rng)
        return rng.choices(pairs, weights=[pw[p] for p in pairs])[0]
    raise ValueError(f"unknown sampling policy {policy!r} (choose from {', '.join(POLICIES)})")
