"""ratings.core: one leaderboard function for BT and contextual BT, the anchor's
semantics, the style bootstrap's rules, and the shared Newton solver."""

from __future__ import annotations

import numpy as np
import pytest

from ratings import engine as E
from ratings.core import models as M


def simulate(n_models=6, battles=3000, seed=0, skew=None):
    rng = np.random.default_rng(seed)
    strength = np.linspace(1.0, -1.0, n_models)
    a = rng.integers(0, n_models, battles)
    b = (a + rng.integers(1, n_models, battles)) % n_models
    if skew is not None:  # an over-sampled pair
        a[:skew], b[:skew] = 0, 1
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    u = rng.random(battles)
    y = np.where(u < 0.1, 0.5, (rng.random(battles) < p).astype(float))
    return a, b, y


def style_battles(a, b, y, seed=1, effect=0.0):
    """Style counts with a length effect: the longer answer wins more often when ``effect`` > 0."""
    rng = np.random.default_rng(seed)
    xa = rng.integers(0, 40, (len(a), 4))
    xb = rng.integers(0, 40, (len(a), 4))
    if effect:
        flip = (rng.random(len(a)) < effect) & (y != 0.5)
        longer_a = xa[:, 0] >= xb[:, 0]
        y = np.where(flip, longer_a.astype(float), y)
    return E.StyleBattles(a=a, b=b, y=y, features=E.style_design(xa, xb)), y


NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
@pytest.mark.parametrize("style", [False, True], ids=["bt", "contextual_bt"])
def test_an_anchor_only_shifts_ratings_and_bounds(ci, style):
    a, b, y = simulate()
    sb = None
    if style:
        sb, y = style_battles(a, b, y)
    pc = E.aggregate(a, b, y, 6)
    kw = {"names": NAMES, "ci": ci, "rounds": 60, "seed": 5, "simultaneous": True, "style": sb}
    free = E.leaderboard(pc, **kw)
    pinned = E.leaderboard(pc, anchor=(2, 1114.0), **kw)
    assert pinned.rating[2] == pytest.approx(1114.0, abs=1e-9)
    shift = pinned.rating - free.rating
    assert np.ptp(shift) < 1e-9 and pinned.shift == pytest.approx(shift[0])
    for lo, hi in (("lower", "upper"), ("sim_lower", "sim_upper")):
        assert getattr(pinned, lo) - getattr(free, lo) == pytest.approx(shift, abs=1e-9)
        assert getattr(pinned, hi) - getattr(free, hi) == pytest.approx(shift, abs=1e-9)
    # the anchored model keeps its centred width (FastChat's re-anchored bootstrap made it 0)
    assert pinned.upper[2] - pinned.lower[2] > 5.0
    assert list(pinned.rank) == list(free.rank)


def test_anchored_widths_agree_across_interval_methods_up_to_sampling():
    a, b, y = simulate(battles=4000, seed=3)
    pc = E.aggregate(a, b, y, 6)
    anchor = (0, 1200.0)
    sandwich = E.leaderboard(pc, names=NAMES, anchor=anchor)
    boot = E.leaderboard(pc, names=NAMES, anchor=anchor, ci="bootstrap", rounds=300, seed=1)
    ws = sandwich.upper - sandwich.lower
    wb = boot.upper - boot.lower
    assert np.all(np.abs(wb / ws - 1) < 0.25), (ws, wb)
    assert wb[0] > 0.5 * ws[0]


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
@pytest.mark.parametrize("style", [False, True], ids=["bt", "contextual_bt"])
def test_the_model_order_does_not_change_any_number(ci, style):
    """A database indexes models by id, a file by first appearance: with the
    names given, bootstrap draws and the simultaneous critical value follow
    the names, not the indices."""
    a, b, y = simulate(seed=4)
    sb = style_battles(a, b, y)[0] if style else None
    perm = np.array([3, 0, 5, 1, 4, 2])  # new index of old model i
    names2 = [None] * 6
    for i, j in enumerate(perm):
        names2[j] = NAMES[i]
    kw = {"ci": ci, "rounds": 40, "seed": 9, "simultaneous": True}
    one = E.leaderboard(E.aggregate(a, b, y, 6), names=NAMES, style=sb, **kw)
    sb2 = None if sb is None else E.StyleBattles(perm[sb.a], perm[sb.b], sb.y, sb.features)
    two = E.leaderboard(E.aggregate(perm[a], perm[b], y, 6), names=names2, style=sb2, **kw)
    for field in ("rating", "lower", "upper", "sim_lower", "sim_upper", "rank", "sim_rank"):
        assert getattr(two, field)[perm] == pytest.approx(getattr(one, field), abs=1e-6), field
    assert two.critical_value == pytest.approx(one.critical_value, abs=1e-12)


def test_leaderboard_reports_its_method_labels_and_convergence():
    a, b, y = simulate()
    sb, y = style_battles(a, b, y, effect=0.3)
    pc = E.aggregate(a, b, y, 6)
    lb = E.leaderboard(pc, names=NAMES, ci="none", style=sb, anchor=(1, 1100.0))
    assert (lb.model, lb.ci, lb.anchor, lb.tie_model) == ("contextual_bt", "none", (1, 1100.0), "half")
    assert lb.fit.converged and lb.fit.iterations >= 1
    assert list(lb.style_coefficients) == list(E.STYLE_FEATURES)
    assert lb.style_coefficients["tokens"] > 0.1, "the simulated length effect is found"
    assert np.array_equal(lb.lower, lb.rating) and np.array_equal(lb.upper, lb.rating)
    assert E.leaderboard(pc, names=NAMES).model == "bt"
    assert E.leaderboard(pc, names=NAMES, ties="davidson").model == "davidson"
    with pytest.raises(ValueError, match="Davidson"):
        E.leaderboard(pc, names=NAMES, style=sb, ties="davidson")


def test_a_count_is_the_same_as_repeated_rows_in_contextual_bt():
    """``count`` says how many battles a row stands for: the fit and its
    sandwich equal those of the rows written out (the meat is
    count * (w (y - p))^2, not (count (y - p))^2)."""
    a, b, y = simulate(battles=800, seed=6)
    sb, y = style_battles(a, b, y)
    twice = E.fit_style_bt(np.r_[a, a], np.r_[b, b], np.r_[y, y], np.r_[sb.features, sb.features], 6)
    counted = E.fit_style_bt(a, b, y, sb.features, 6, count=np.full(len(a), 2.0))
    assert counted.theta == pytest.approx(twice.theta, abs=1e-9)
    assert counted.se_theta == pytest.approx(twice.se_theta, rel=1e-6)


def test_style_bootstrap_draws_by_count_and_fits_with_the_weights():
    """With reweighting, a resample keeps each battle's weight (as the BT
    bootstrap does): the rounds centre on the reweighted fit, not on the
    unweighted one."""
    a, b, y = simulate(battles=3000, seed=8, skew=1500)
    y[:1500] = 1.0  # the over-sampled pair: model 0 always beats model 1
    sb = E.StyleBattles(a=a, b=b, y=y, features=np.zeros((len(a), 4)))
    pc = E.aggregate(a, b, y, 6)
    weighted = E.leaderboard(pc, names=NAMES, reweight=True, style=sb, ci="bootstrap", rounds=200, seed=2)
    plain = E.leaderboard(pc, names=NAMES, style=sb, ci="none")
    bt_weighted = E.leaderboard(pc, names=NAMES, reweight=True, ci="sandwich")
    # zero features: contextual BT is BT, weighted alike
    assert weighted.rating == pytest.approx(bt_weighted.rating, abs=1e-6)
    centre = 0.5 * (weighted.lower + weighted.upper)
    assert np.abs(centre - weighted.rating).max() < 15.0
    assert np.abs(plain.rating - weighted.rating).max() > 60.0, "the data make the weights matter"
    # and the spread is the weighted estimator's: drawing by weight and fitting
    # unweighted (the old command line) made these intervals ~30% narrower
    ratio = (weighted.upper - weighted.lower) / (bt_weighted.upper - bt_weighted.lower)
    assert 0.85 < ratio.mean() < 1.15 and np.all((ratio > 0.75) & (ratio < 1.3)), ratio


def test_style_bootstrap_rounds_fall_back_to_the_penalty_and_stay_finite():
    """A model with a handful of battles loses all of them in some resamples;
    those rounds get the fallback penalty instead of running off to -inf."""
    a, b, y = simulate(battles=1500, seed=10)
    a = np.r_[a, [5, 5, 5]]
    b = np.r_[b, [0, 1, 2]]
    y = np.r_[y, [1.0, 0.0, 0.0]]  # model 5: one win in its three extra battles
    keep = (a != 5) & (b != 5) | (np.arange(len(a)) >= 1500)
    a, b, y = a[keep], b[keep], y[keep]
    sb, _ = style_battles(a, b, y)
    a5 = np.flatnonzero((sb.a == 5) | (sb.b == 5))
    assert len(a5) == 3
    theta = E.fit_style_bt(sb.a, sb.b, sb.y, sb.features, 6, intervals=False)
    samples = E.style_bootstrap_samples(
        sb.a,
        sb.b,
        sb.y,
        sb.features,
        6,
        theta.theta,
        theta.beta,
        l2=0.0,
        beta_l2=0.5,
        rounds=40,
        seed=3,
        active=np.ones(6, dtype=bool),
    )
    assert np.isfinite(samples).all()
    # with the penalty model 5 stays within ~930 points of 1000 here; without it, 2,040
    assert np.abs(samples - 1000).max() < 1500


def test_damped_newton_minimises_a_quadratic_in_one_step():
    h = np.array([[3.0, 1.0], [1.0, 2.0]])
    g0 = np.array([1.0, -4.0])

    def objective(x):
        return float(0.5 * x @ h @ x + g0 @ x), None

    res = M.damped_newton(np.zeros(2), objective, lambda x, s: h @ x + g0, lambda x, s: h, tol=1e-12)
    assert res.x == pytest.approx(np.linalg.solve(h, -g0), abs=1e-12)
    assert res.iterations == 1 and res.grad_norm <= 1e-12


def test_the_core_imports_nothing_from_django_or_the_project():
    """The numeric core is pure numpy: importing it in a fresh interpreter
    loads no Django and no other project package."""
    import subprocess
    import sys

    from tests.services import ROOT

    code = (
        "import sys, ratings.core.leaderboard, ratings.engine, ratings.davidson; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'arena', 'votes', 'rest_framework')"
        " or (m.startswith('ratings.') and not m.startswith(('ratings.core', 'ratings.engine', 'ratings.davidson'))));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
