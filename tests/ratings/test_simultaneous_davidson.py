"""Simultaneous intervals and Davidson's tie model (ratings.engine, ratings.davidson),
checked against closed forms, solvers written here and finite differences."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ratings import davidson as D
from ratings import engine as E

ROOT = Path(__file__).resolve().parents[2]


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def davidson_battles(m=8, n=20_000, nu=0.7, seed=3, spread=1.0):
    rng = np.random.default_rng(seed)
    true = np.linspace(-spread, spread, m)
    true -= true.mean()
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    pw, pt, _, _ = D.probabilities(true[a] - true[b], math.log(nu))
    u = rng.random(n)
    y = np.where(u < pw, 1.0, np.where(u < pw + pt, 0.5, 0.0))
    return true, a, b, y


# --------------------------------------------------------------------------
# simultaneous intervals


def test_max_abs_quantile_of_independent_normals_has_the_closed_form():
    # P(max |Z_i| <= c) = (2 Phi(c) - 1)^m for m independent standard normals
    m = 10
    c = E.max_abs_quantile(np.eye(m))
    assert (2 * _normal_cdf(c) - 1) ** m == pytest.approx(0.95, abs=0.004)
    assert c == pytest.approx(2.7992, abs=0.02)


def test_max_abs_quantile_of_equicorrelated_normals_matches_one_dimensional_quadrature():
    # Z_i = sqrt(rho) W + sqrt(1 - rho) e_i: given W the coordinates are independent, so
    # P(max |Z_i| <= c) = E_W[(Phi((c - sqrt(rho) W) / s) - Phi((-c - sqrt(rho) W) / s))^m], s = sqrt(1 - rho)
    m, rho = 30, 0.6
    cov = np.full((m, m), rho) + (1 - rho) * np.eye(m)
    c = E.max_abs_quantile(cov)
    w = np.linspace(-8, 8, 4001)
    dens = np.exp(-(w**2) / 2) / math.sqrt(2 * math.pi)
    cdf = np.vectorize(_normal_cdf)
    s = math.sqrt(1 - rho)
    inner = (cdf((c - math.sqrt(rho) * w) / s) - cdf((-c - math.sqrt(rho) * w) / s)) ** m
    level = float(np.sum(inner * dens) * (w[1] - w[0]))
    assert level == pytest.approx(0.95, abs=0.005)
    # well below Sidak's bound, which assumes no correlation
    assert c < E._normal_quantile(0.5 + 0.5 * 0.95 ** (1 / m)) - 0.1


def test_max_abs_quantile_of_one_coordinate_or_perfect_correlation_is_1_96():
    assert E.max_abs_quantile(np.array([[4.0]])) == pytest.approx(E.Z95, abs=1e-9)
    v = np.array([1.0, 2.0, -3.0])
    assert E.max_abs_quantile(np.outer(v, v)) == pytest.approx(E.Z95, abs=0.03)


def test_max_abs_quantile_ignores_an_anchored_coordinate_and_is_seeded():
    cov = np.diag([1.0, 1.0, 0.0])
    assert E.max_abs_quantile(cov) == E.max_abs_quantile(cov)
    assert E.max_abs_quantile(cov) == pytest.approx(E.max_abs_quantile(np.eye(2)), abs=1e-12)


def bt_battles(m=12, n=30_000, seed=5):
    rng = np.random.default_rng(seed)
    true = np.linspace(-1.5, 1.5, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    y = (rng.random(n) < E.sigmoid(true[a] - true[b])).astype(float)
    return E.aggregate(a, b, y, m)


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
def test_simultaneous_bounds_contain_the_marginal_ones_and_rank_from_them(ci):
    pc = bt_battles()
    lb = E.leaderboard(pc, ci=ci, rounds=200, seed=1, simultaneous=True)
    plain = E.leaderboard(pc, ci=ci, rounds=200, seed=1)
    # the marginal numbers are untouched by asking for the simultaneous ones
    assert np.array_equal(lb.lower, plain.lower) and np.array_equal(lb.upper, plain.upper)
    assert np.array_equal(lb.rank, plain.rank)
    assert 2.3 < lb.critical_value < 3.5
    assert np.all(lb.sim_lower < lb.rating) and np.all(lb.rating < lb.sim_upper)
    if ci == "sandwich":  # same centre, half-width scaled by c / 1.96
        ratio = (lb.sim_upper - lb.rating) / (lb.upper - lb.rating)
        assert np.allclose(ratio, lb.critical_value / E.Z95)
    assert np.all(lb.sim_lower <= lb.lower + 1e-9) or ci == "bootstrap"
    assert np.all(lb.sim_upper - lb.sim_lower > lb.upper - lb.lower)
    assert np.array_equal(lb.sim_rank, E.rank_ub(lb.sim_lower, lb.sim_upper))
    # wider intervals can only tie more models: rank (UB) never gets worse
    assert np.all(lb.sim_rank <= lb.rank)


def test_sandwich_cov_diagonal_is_the_sandwich_se():
    pc = bt_battles(seed=9)
    lb = E.leaderboard(pc)
    cov = E.sandwich_cov(pc, lb.theta)
    assert np.allclose(np.sqrt(np.diag(cov)), E.sandwich_se(pc, lb.theta), rtol=1e-10, atol=0)
    assert np.allclose(cov.sum(axis=1), 0.0, atol=1e-10)  # centred ratings: rows sum to zero


def test_bootstrap_max_statistic_covers_every_round_at_its_level():
    rating = np.zeros(4)
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(400, 4)) * np.array([1.0, 2.0, 3.0, 4.0])
    lo, hi, c = E.simultaneous_bootstrap(rating, samples, np.ones(4, dtype=bool))
    inside = np.all((samples >= lo) & (samples <= hi), axis=1).mean()
    assert inside == pytest.approx(0.95, abs=0.005)
    assert c > E.Z95


# --------------------------------------------------------------------------
# Davidson: an independent solver (Davidson 1970's own iteration)


def davidson_fixed_point(a, b, y, m, iters=20_000, tol=1e-13):
    """Davidson's (1970) iterative solution of the likelihood equations, on
    strengths pi (not logs), per battle rather than per pair:
        pi_i <- (2 W_i + T_i) / sum_battles (2 + nu sqrt(pi_j / pi_i)) / D
        nu   <- T / sum_battles sqrt(pi_i pi_j) / D,   D = pi_i + pi_j + nu sqrt(pi_i pi_j)."""
    pi = np.ones(m)
    nu = 1.0
    wins = np.bincount(a, y == 1.0, m) + np.bincount(b, y == 0.0, m)
    ties = np.bincount(a, y == 0.5, m) + np.bincount(b, y == 0.5, m)
    t_total = float((y == 0.5).sum())
    for _ in range(iters):
        s = np.sqrt(pi[a] * pi[b])
        den = pi[a] + pi[b] + nu * s
        term_a = (2 + nu * np.sqrt(pi[b] / pi[a])) / den
        term_b = (2 + nu * np.sqrt(pi[a] / pi[b])) / den
        new = (2 * wins + ties) / (np.bincount(a, term_a, m) + np.bincount(b, term_b, m))
        new /= np.exp(np.log(new).mean())
        s = np.sqrt(new[a] * new[b])
        new_nu = t_total / (s / (new[a] + new[b] + nu * s)).sum()
        done = np.abs(np.log(new / pi)).max() < tol and abs(new_nu - nu) < tol
        pi, nu = new, new_nu
        if done:
            break
    return np.log(pi), nu


def test_newton_agrees_with_davidsons_own_iteration():
    _, a, b, y = davidson_battles(m=6, n=3_000, nu=0.9, seed=11)
    fit = D.fit_davidson(E.aggregate(a, b, y, 6))
    theta, nu = davidson_fixed_point(a, b, y, 6)
    assert fit.converged
    assert np.allclose(fit.theta, theta - theta.mean(), atol=1e-6)
    assert fit.nu == pytest.approx(nu, rel=1e-6)


def per_battle_nll(theta, kappa, a, b, y):
    # the model as Davidson wrote it, in strengths, one battle at a time
    pi, nu = np.exp(theta), math.exp(kappa)
    total = 0.0
    for i, j, s in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        den = pi[i] + pi[j] + nu * math.sqrt(pi[i] * pi[j])
        num = pi[i] if s == 1.0 else pi[j] if s == 0.0 else nu * math.sqrt(pi[i] * pi[j])
        total -= math.log(num / den)
    return total


def test_fit_is_a_stationary_point_of_the_per_battle_likelihood():
    _, a, b, y = davidson_battles(m=5, n=600, nu=0.5, seed=2)
    fit = D.fit_davidson(E.aggregate(a, b, y, 5))
    x0 = np.concatenate([fit.theta, [fit.log_nu]])

    def f(x):
        return per_battle_nll(x[:5], x[5], a, b, y)

    h = 1e-6
    grad = np.array([(f(x0 + h * e) - f(x0 - h * e)) / (2 * h) for e in np.eye(6)])
    assert np.abs(grad).max() < 1e-4
    # and a minimum: every direction goes up (besides adding a constant to theta)
    rng = np.random.default_rng(0)
    for _ in range(10):
        v = rng.normal(size=6)
        v[:5] -= v[:5].mean()
        assert f(x0 + 1e-2 * v) > f(x0) and f(x0 - 1e-2 * v) > f(x0)


def test_davidson_recovers_generating_strengths_and_nu():
    true, a, b, y = davidson_battles(m=8, n=80_000, nu=0.7, seed=4)
    pc = E.aggregate(a, b, y, 8)
    lb = E.leaderboard(pc, ties="davidson")
    assert lb.tie_model == "davidson"
    se = (lb.upper - lb.lower) / (2 * E.Z95 * E.POINTS_PER_THETA)
    assert np.all(np.abs(lb.theta - true) < 4 * se)
    assert lb.tie_param["lower"] < 0.7 < lb.tie_param["upper"]
    # ties as half shrink the gaps on the same data
    half = E.leaderboard(pc)
    assert np.ptp(half.theta) < 0.85 * np.ptp(lb.theta)


def test_no_ties_gives_bradley_terry_with_nu_zero():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, 2000)
    b = (a + rng.integers(1, 5, 2000)) % 5
    y = (rng.random(2000) < E.sigmoid(0.3 * (a - b))).astype(float)
    pc = E.aggregate(a, b, y, 5)
    for ci in ("sandwich", "bootstrap"):
        dav = E.leaderboard(pc, ties="davidson", ci=ci, seed=3, rounds=20)
        bt = E.leaderboard(pc, ci=ci, seed=3, rounds=20)
        assert np.allclose(dav.rating, bt.rating, atol=1e-8)
        assert np.allclose(dav.lower, bt.lower, atol=1e-8) and np.allclose(dav.upper, bt.upper, atol=1e-8)
        assert dav.tie_param == {"nu": 0.0, "lower": 0.0, "upper": 0.0}
        assert any("no ties" in w for w in dav.warnings)


def test_only_ties_is_a_clear_error_for_the_fit_and_a_warned_fallback_for_the_board():
    pc = E.aggregate(np.array([0, 1]), np.array([1, 2]), np.array([0.5, 0.5]), 3)
    with pytest.raises(ValueError, match="decisive"):
        D.fit_davidson(pc)
    lb = E.leaderboard(pc, ties="davidson")
    assert lb.tie_model == "half" and lb.tie_param is None
    assert any("every battle is a tie" in w for w in lb.warnings)
    assert np.allclose(lb.rating, 1000.0)


def test_swapping_sides_changes_nothing():
    _, a, b, y = davidson_battles(m=6, n=5_000, seed=8)
    one = E.leaderboard(E.aggregate(a, b, y, 6), ties="davidson")
    two = E.leaderboard(E.aggregate(b, a, 1.0 - y, 6), ties="davidson")
    assert np.allclose(one.rating, two.rating, atol=1e-9)
    assert np.allclose(one.lower, two.lower, atol=1e-9)
    assert one.tie_param["nu"] == pytest.approx(two.tie_param["nu"], rel=1e-12)


def test_sandwich_matches_finite_difference_scores_per_battle():
    _, a, b, y = davidson_battles(m=4, n=400, nu=0.6, seed=6)
    pc = E.aggregate(a, b, y, 4)
    fit = D.fit_davidson(pc)
    cov = D.sandwich_cov(pc, fit.theta, fit.log_nu)
    x0 = np.concatenate([fit.theta, [fit.log_nu]])
    h = 1e-5
    # per-battle scores by central differences, summed as outer products (the meat);
    # the bread by differences of the summed gradient
    scores = np.zeros((len(a), 5))
    for k, e in enumerate(np.eye(5)):
        for r in range(len(a)):
            up = per_battle_nll((x0 + h * e)[:4], (x0 + h * e)[4], a[r : r + 1], b[r : r + 1], y[r : r + 1])
            dn = per_battle_nll((x0 - h * e)[:4], (x0 - h * e)[4], a[r : r + 1], b[r : r + 1], y[r : r + 1])
            scores[r, k] = (up - dn) / (2 * h)
    meat = scores.T @ scores

    def total_grad(x):
        return scores_sum(x, a, b, y)

    def scores_sum(x, a, b, y):
        g = np.zeros(5)
        for k, e in enumerate(np.eye(5)):
            g[k] = (
                per_battle_nll((x + h * e)[:4], (x + h * e)[4], a, b, y)
                - per_battle_nll((x - h * e)[:4], (x - h * e)[4], a, b, y)
            ) / (2 * h)
        return g

    bread = np.column_stack([(total_grad(x0 + 1e-4 * e) - total_grad(x0 - 1e-4 * e)) / 2e-4 for e in np.eye(5)])
    bread = 0.5 * (bread + bread.T)
    bread[:4, :4] += E.SANDWICH_EPS_PER_BATTLE * len(a) + 1.0  # the engine's ridge, and 11^T on the thetas
    proj = np.eye(5)
    proj[:4, :4] -= 0.25
    hinv = proj @ np.linalg.inv(bread) @ proj
    expect = hinv @ meat @ hinv
    assert np.allclose(np.sqrt(np.diag(cov)), np.sqrt(np.diag(expect)), rtol=2e-3)


def test_davidson_bootstrap_is_seeded_and_agrees_with_the_sandwich():
    _, a, b, y = davidson_battles(m=6, n=20_000, seed=12)
    pc = E.aggregate(a, b, y, 6)
    one = E.leaderboard(pc, ties="davidson", ci="bootstrap", rounds=200, seed=5, simultaneous=True)
    two = E.leaderboard(pc, ties="davidson", ci="bootstrap", rounds=200, seed=5, simultaneous=True)
    sand = E.leaderboard(pc, ties="davidson")
    assert np.array_equal(one.lower, two.lower) and np.array_equal(one.sim_upper, two.sim_upper)
    ratio = (one.upper - one.lower) / (sand.upper - sand.lower)
    assert np.all((ratio > 0.8) & (ratio < 1.25))
    assert one.tie_param["lower"] < one.tie_param["nu"] < one.tie_param["upper"]
    width_ratio = (one.tie_param["upper"] - one.tie_param["lower"]) / (
        sand.tie_param["upper"] - sand.tie_param["lower"]
    )
    assert 0.75 < width_ratio < 1.3


# --------------------------------------------------------------------------
# the command


def run(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "rate_battles", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture
def csv_file(tmp_path):
    _, a, b, y = davidson_battles(m=5, n=3_000, seed=21)
    names = ["m0", "m1", "m2", "m3", "m4"]
    word = {1.0: "model_a", 0.0: "model_b", 0.5: "tie"}
    path = tmp_path / "battles.csv"
    path.write_text(
        "model_a,model_b,winner\n"
        + "".join(
            f"{names[i]},{names[j]},{word[s]}\n" for i, j, s in zip(a.tolist(), b.tolist(), y.tolist(), strict=True)
        )
    )
    return path


def test_command_simultaneous_and_davidson(csv_file):
    plain = json.loads(run(str(csv_file)).stdout)
    sim = run(str(csv_file), "--simultaneous")
    assert sim.returncode == 0, sim.stderr
    sim = json.loads(sim.stdout)
    assert plain["intervals"] == "marginal" and sim["intervals"] == "simultaneous"
    assert sim["critical_value"] > E.Z95
    by = {r["model"]: r for r in plain["models"]}
    for r in sim["models"]:
        assert r["rating"] == by[r["model"]]["rating"]
        assert r["upper"] - r["lower"] > by[r["model"]]["upper"] - by[r["model"]]["lower"]
    dav = json.loads(
        run(str(csv_file), "--ties", "davidson", "--ci", "bootstrap", "--seed", "1", "--rounds", "30").stdout
    )
    assert dav["ties"] == "davidson" and plain["ties"] == "half"
    assert set(dav["tie_param"]) == {"nu", "lower", "upper"}
    assert dav["tie_param"]["lower"] < dav["tie_param"]["nu"] < dav["tie_param"]["upper"]
    table = run(str(csv_file), "--ties", "davidson", "--simultaneous", "--format", "table").stdout
    assert "davidson tie parameter nu=" in table and "critical value" in table


def test_command_rejects_davidson_with_elo_or_style(csv_file):
    out = run(str(csv_file), "--ties", "davidson", "--method", "elo")
    assert out.returncode == 1 and "--ties davidson" in out.stderr and "Traceback" not in out.stderr
    out = run(str(csv_file), "--simultaneous", "--method", "elo")
    assert out.returncode == 1 and "--simultaneous" in out.stderr
