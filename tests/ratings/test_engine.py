"""The rating core against published worked examples, an independent
implementation written here, and the properties BT must have."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratings import engine as E

# Agresti (1987) / BradleyTerry2 `baseballModel1`: 1987 American League East,
# home and away wins per pairing (home advantage ignored).
BASEBALL = [
    ("Milwaukee", "Detroit", 4, 3),
    ("Milwaukee", "Toronto", 4, 2),
    ("Milwaukee", "New York", 4, 3),
    ("Milwaukee", "Boston", 6, 1),
    ("Milwaukee", "Cleveland", 4, 2),
    ("Milwaukee", "Baltimore", 6, 0),
    ("Detroit", "Milwaukee", 3, 3),
    ("Detroit", "Toronto", 4, 2),
    ("Detroit", "New York", 4, 3),
    ("Detroit", "Boston", 6, 0),
    ("Detroit", "Cleveland", 6, 1),
    ("Detroit", "Baltimore", 4, 3),
    ("Toronto", "Milwaukee", 2, 5),
    ("Toronto", "Detroit", 4, 3),
    ("Toronto", "New York", 2, 4),
    ("Toronto", "Boston", 4, 3),
    ("Toronto", "Cleveland", 4, 2),
    ("Toronto", "Baltimore", 6, 0),
    ("New York", "Milwaukee", 3, 3),
    ("New York", "Detroit", 5, 1),
    ("New York", "Toronto", 2, 5),
    ("New York", "Boston", 4, 3),
    ("New York", "Cleveland", 4, 2),
    ("New York", "Baltimore", 6, 1),
    ("Boston", "Milwaukee", 5, 1),
    ("Boston", "Detroit", 2, 5),
    ("Boston", "Toronto", 3, 3),
    ("Boston", "New York", 4, 2),
    ("Boston", "Cleveland", 5, 2),
    ("Boston", "Baltimore", 6, 0),
    ("Cleveland", "Milwaukee", 2, 5),
    ("Cleveland", "Detroit", 3, 3),
    ("Cleveland", "Toronto", 3, 4),
    ("Cleveland", "New York", 4, 3),
    ("Cleveland", "Boston", 4, 2),
    ("Cleveland", "Baltimore", 2, 4),
    ("Baltimore", "Milwaukee", 2, 5),
    ("Baltimore", "Detroit", 1, 5),
    ("Baltimore", "Toronto", 1, 6),
    ("Baltimore", "New York", 2, 4),
    ("Baltimore", "Boston", 1, 6),
    ("Baltimore", "Cleveland", 3, 4),
]
BASEBALL_PUBLISHED = {  # log-abilities, Baltimore = 0
    "Milwaukee": 1.5814,
    "Detroit": 1.4364,
    "Toronto": 1.2945,
    "New York": 1.2476,
    "Boston": 1.1077,
    "Cleveland": 0.6839,
    "Baltimore": 0.0,
}


def counts_from_table(rows, names):
    ix = {n: i for i, n in enumerate(names)}
    a, b, y, c = [], [], [], []
    for home, away, hw, aw in rows:
        a += [ix[home], ix[home]]
        b += [ix[away], ix[away]]
        y += [1.0, 0.0]
        c += [hw, aw]
    return E.from_rows(a, b, y, c, len(names))


def test_baseball_log_abilities_match_agresti():
    names = sorted(BASEBALL_PUBLISHED)
    fit = E.fit_bt(counts_from_table(BASEBALL, names))
    theta = fit.theta - fit.theta[names.index("Baltimore")]
    for i, team in enumerate(names):
        assert theta[i] == pytest.approx(BASEBALL_PUBLISHED[team], abs=5e-4), team


def test_wikipedia_four_team_example():
    # Wikipedia "Bradley–Terry model", worked example: wins of row over column.
    wins = np.array([[0, 2, 0, 1], [3, 0, 5, 0], [0, 3, 0, 1], [4, 0, 3, 0]])
    a, b = np.nonzero(wins)
    fit = E.fit_bt(E.from_rows(a, b, np.ones(len(a)), wins[a, b], 4))
    p = np.exp(fit.theta)
    p = p / np.exp(np.log(p).mean())  # normalised to geometric mean 1, as in the article
    assert p == pytest.approx([0.640, 1.043, 0.660, 2.270], abs=1e-3)


def zermelo_mm(wins: np.ndarray, iters: int = 20000) -> np.ndarray:
    """Hunter's (2004) MM iteration, an independent BT solver: p_i <- W_i / sum_j n_ij/(p_i+p_j)."""
    n = wins + wins.T
    w = wins.sum(axis=1)
    p = np.ones(len(w))
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
        p = w / denom
        p = p / np.exp(np.log(p).mean())
    return np.log(p)


def test_newton_agrees_with_an_independent_mm_solver():
    rng = np.random.default_rng(7)
    m = 8
    true = rng.normal(0, 1, m)
    wins = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i != j:
                wins[i, j] = rng.binomial(30, 1 / (1 + math.exp(-(true[i] - true[j]))))
    a, b = np.nonzero(wins)
    fit = E.fit_bt(E.from_rows(a, b, np.ones(len(a)), wins[a, b], m))
    assert fit.theta == pytest.approx(zermelo_mm(wins), abs=1e-6)


def test_gradient_reaches_one_millionth_of_the_battle_count():
    rng = np.random.default_rng(1)
    m, n = 30, 50_000
    a, b = rng.integers(0, m, n), rng.integers(0, m, n)
    y = rng.choice([0.0, 0.5, 1.0], n, p=[0.35, 0.3, 0.35])
    pc = E.aggregate(a, b, y, m)
    fit = E.fit_bt(pc)
    assert fit.converged
    assert fit.grad_norm <= 1e-6 * pc.total


def per_battle_sandwich(a, b, y, theta, eps_total):
    """Sandwich computed battle by battle with plain loops (no aggregation)."""
    m = len(theta)
    h = np.eye(m) * 1e-5 * eps_total
    g = np.zeros((m, m))
    for ia, ib, yy in zip(a, b, y, strict=True):
        if ia == ib:
            continue
        x = np.zeros(m)
        x[ia], x[ib] = 1.0, -1.0
        p = 1 / (1 + math.exp(-(theta[ia] - theta[ib])))
        h += p * (1 - p) * np.outer(x, x)
        g += (yy - p) ** 2 * np.outer(x, x)
    hinv = np.linalg.inv(h)
    return np.sqrt(np.diag(hinv @ g @ hinv))


def test_sandwich_on_counts_equals_the_per_battle_sum():
    rng = np.random.default_rng(3)
    m, n = 6, 800
    a, b = rng.integers(0, m, n), rng.integers(0, m, n)
    y = rng.choice([0.0, 0.5, 1.0], n)
    pc = E.aggregate(a, b, y, m)
    fit = E.fit_bt(pc)
    se = E.sandwich_se(pc, fit.theta)
    assert se == pytest.approx(per_battle_sandwich(a, b, y, fit.theta, pc.total), rel=1e-7)


def test_rating_scale_and_rank_ub():
    assert E.theta_to_points(np.array([0.0, math.log(10)])) == pytest.approx([1000.0, 1400.0])
    lower = np.array([1100.0, 1090.0, 1000.0])
    upper = np.array([1200.0, 1150.0, 1095.0])
    # third model's upper (1095) is below the first's lower (1100) only
    assert list(E.rank_ub(lower, upper)) == [1, 1, 2]


def test_anchor_shifts_every_rating_equally():
    names = sorted(BASEBALL_PUBLISHED)
    pc = counts_from_table(BASEBALL, names)
    free = E.leaderboard(pc, names=names)
    pinned = E.leaderboard(pc, names=names, anchor=(names.index("Boston"), 1114.0))
    assert pinned.rating[names.index("Boston")] == pytest.approx(1114.0)
    shift = pinned.rating - free.rating
    assert shift == pytest.approx(np.full(len(names), shift[0]))
    assert (pinned.upper - pinned.lower) == pytest.approx(free.upper - free.lower)


def test_l2_penalty_pulls_ratings_towards_the_base():
    names = sorted(BASEBALL_PUBLISHED)
    pc = counts_from_table(BASEBALL, names)
    free = E.fit_bt(pc)
    shrunk = E.fit_bt(pc, l2=5.0)
    assert np.abs(shrunk.theta).sum() < np.abs(free.theta).sum()
    # stationarity of the penalised objective in METHOD.md's convention
    lam = 5.0 / math.log(10) ** 2
    p = E.sigmoid(shrunk.theta[pc.a] - shrunk.theta[pc.b])
    r = pc.count * (pc.y - p)
    grad = np.bincount(pc.b, r, 7) - np.bincount(pc.a, r, 7) + lam * shrunk.theta
    assert np.abs(grad).max() < 1e-6


# ---------------------------------------------------------------- properties

battles_strategy = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.sampled_from([0.0, 0.5, 1.0])), min_size=40, max_size=120
)


def dense_battles(raw):
    """Hypothesis data plus one tie per pair, so the MLE always exists."""
    a = [r[0] for r in raw] + [i for i in range(5) for j in range(5) if i < j]
    b = [r[1] for r in raw] + [j for i in range(5) for j in range(5) if i < j]
    y = [r[2] for r in raw] + [0.5] * 10
    return np.array(a), np.array(b), np.array(y)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(battles_strategy)
def test_swapping_sides_with_flipped_outcome_changes_nothing(raw):
    a, b, y = dense_battles(raw)
    one = E.leaderboard(E.aggregate(a, b, y, 5))
    two = E.leaderboard(E.aggregate(b, a, 1.0 - y, 5))
    assert two.rating == pytest.approx(one.rating, abs=1e-6)
    assert two.upper - two.lower == pytest.approx(one.upper - one.lower, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(battles_strategy, st.floats(-50, 50))
def test_adding_a_constant_keeps_predicted_probabilities(raw, shift):
    a, b, y = dense_battles(raw)
    fit = E.fit_bt(E.aggregate(a, b, y, 5))
    assert E.predicted_winrate(fit.theta + shift) == pytest.approx(E.predicted_winrate(fit.theta), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(battles_strategy)
def test_duplicating_every_battle_keeps_ratings_and_shrinks_intervals_by_sqrt2(raw):
    a, b, y = dense_battles(raw)
    once = E.leaderboard(E.aggregate(a, b, y, 5))
    twice = E.leaderboard(E.aggregate(np.tile(a, 2), np.tile(b, 2), np.tile(y, 2), 5))
    assert twice.rating == pytest.approx(once.rating, abs=1e-6)
    # The sandwich ridge is 1e-5 x battles on both sides, so the ratio is exact.
    assert once.upper - once.lower == pytest.approx(math.sqrt(2) * (twice.upper - twice.lower), rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------- robustness


def test_unbeaten_and_winless_models_get_finite_numbers_and_a_warning():
    names = ["champ", "mid", "low", "floor"]
    a = np.array([0, 0, 1, 1, 2, 1])
    b = np.array([1, 2, 2, 3, 3, 2])
    y = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])  # champ never loses, floor never wins
    lb = E.leaderboard(E.aggregate(a, b, y, 4), names=names)
    for arr in (lb.rating, lb.lower, lb.upper):
        assert np.all(np.isfinite(arr))
    assert any("champ" in w and "won every battle" in w for w in lb.warnings)
    assert any("floor" in w and "lost every battle" in w for w in lb.warnings)
    assert "only_wins" in lb.flags[0] and "only_losses" in lb.flags[3]
    assert lb.rating[0] > lb.rating[1] > lb.rating[3]


def test_disconnected_graph_is_finite_and_names_the_stranded_models():
    names = ["a", "b", "c", "x", "y"]
    a = np.array([0, 1, 2, 0, 3, 4])
    b = np.array([1, 2, 0, 2, 4, 3])
    y = np.array([1.0, 0.5, 0.0, 0.5, 1.0, 0.0])
    lb = E.leaderboard(E.aggregate(a, b, y, 5), names=names)
    assert np.all(np.isfinite(lb.rating)) and np.all(np.isfinite(lb.lower))
    warning = next(w for w in lb.warnings if "disconnected" in w)
    assert "x" in warning and "y" in warning


def test_model_with_a_single_battle_is_finite_and_flagged():
    a = np.array([0, 1, 0, 2])
    b = np.array([1, 0, 1, 0])
    y = np.array([1.0, 1.0, 0.5, 0.5])
    lb = E.leaderboard(E.aggregate(a, b, y, 3), names=["p", "q", "solo"])
    assert np.all(np.isfinite(lb.upper))
    assert "one_battle" in lb.flags[2]


def test_self_battles_are_dropped_and_counted():
    pc = E.aggregate(np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0]), np.array([1.0, 0.5, 0.0, 1.0]), 2)
    assert pc.n_self == 2
    assert pc.total == 2


def test_outcomes_other_than_0_half_1_are_rejected():
    with pytest.raises(ValueError):
        E.aggregate(np.array([0]), np.array([1]), np.array([0.3]), 2)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(11)
    m, n = 10, 20_000
    true = np.linspace(-1, 1, m)
    a, b = rng.integers(0, m, n), rng.integers(0, m, n)
    p = 1 / (1 + np.exp(-(true[a] - true[b])))
    y = np.where(rng.random(n) < 0.3, 0.5, (rng.random(n) < p).astype(float))
    pc = E.aggregate(a, b, y, m)
    one = E.leaderboard(pc, ci="bootstrap", rounds=300, seed=5)
    two = E.leaderboard(pc, ci="bootstrap", rounds=300, seed=5)
    other = E.leaderboard(pc, ci="bootstrap", rounds=300, seed=6)
    sandwich = E.leaderboard(pc)
    assert np.array_equal(one.lower, two.lower) and np.array_equal(one.upper, two.upper)
    assert not np.array_equal(one.lower, other.lower)
    assert np.all(one.lower <= one.rating) and np.all(one.rating <= one.upper)
    # bootstrap and sandwich estimate the same spread
    ratio = (one.upper - one.lower) / (sandwich.upper - sandwich.lower)
    assert np.all((ratio > 0.8) & (ratio < 1.25))


def test_reweighting_uses_inverse_pair_frequency_with_floor_50():
    a = np.array([0] * 200 + [1] * 10)
    b = np.array([1] * 200 + [2] * 10)
    y = np.ones(210)
    pc = E.reweighted(E.aggregate(a, b, y, 3))
    w = {(int(i), int(j)): float(x) for i, j, x in zip(pc.a, pc.b, pc.weight, strict=True)}
    assert w[(0, 1)] == pytest.approx(1 / 200)
    assert w[(1, 2)] == pytest.approx(1 / 50)


def test_matrices_count_winrate_and_prediction():
    a = np.array([0, 0, 0, 1])
    b = np.array([1, 1, 1, 0])
    y = np.array([1.0, 1.0, 0.5, 1.0])
    pc = E.aggregate(a, b, y, 2)
    assert E.count_matrix(pc)[0, 1] == 4 and E.count_matrix(pc)[1, 0] == 4
    # model 0 scored 1 + 1 + 0.5 of 4 points against model 1
    assert E.observed_winrate(pc)[0, 1] == pytest.approx(2.5 / 4)
    assert E.observed_winrate(pc)[1, 0] == pytest.approx(1.5 / 4)
    pred = E.predicted_winrate(np.array([0.0, math.log(3)]))
    assert pred[1, 0] == pytest.approx(0.75)


def test_online_elo_matches_the_hand_computed_update():
    r = E.online_elo(np.array([0, 0]), np.array([1, 1]), np.array([1.0, 0.0]), 2, k=4)
    # first: E=0.5 -> +2 / -2; second: E_a = 1/(1+10^(-4/400))
    ea = 1 / (1 + 10 ** ((998 - 1002) / 400))
    assert r[0] == pytest.approx(1002 - 4 * ea)
    assert r[1] == pytest.approx(998 + 4 * ea)


def test_style_control_recovers_a_length_bias():
    rng = np.random.default_rng(2)
    m, n = 6, 30_000
    true = np.linspace(-0.6, 0.6, m)
    a, b = rng.integers(0, m, n), rng.integers(0, m, n)
    keep = a != b
    a, b = a[keep], b[keep]
    len_a, len_b = rng.integers(50, 800, len(a)), rng.integers(50, 800, len(a))
    xa = np.column_stack([len_a, np.zeros(len(a)), np.zeros(len(a)), np.zeros(len(a))])
    xb = np.column_stack([len_b, np.zeros(len(a)), np.zeros(len(a)), np.zeros(len(a))])
    f = E.style_design(xa, xb)
    logit = true[a] - true[b] + 0.8 * f[:, 0]
    y = (rng.random(len(a)) < 1 / (1 + np.exp(-logit))).astype(float)
    fit = E.fit_style_bt(a, b, y, f, m)
    assert fit.beta[0] == pytest.approx(0.8, abs=0.08)
    assert fit.theta - fit.theta.mean() == pytest.approx(true - true.mean(), abs=0.08)
    assert np.all(np.isfinite(fit.se_theta))
