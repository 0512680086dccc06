"""Personal leaderboards: the shrinkage math (ratings.personal) against
limits and finite differences, and the endpoints and page through the
database, for the requesting voter only."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from arena.models import ArenaModel, Voter
from ratings import engine as E
from ratings import personal as P
from ratings.services import recompute_publish
from tests.ratings.test_ratings_api import ORDER, add_votes
from votes.models import Vote


def voter_data(m=6, n=300, seed=0):
    rng = np.random.default_rng(seed)
    g = np.linspace(1.0, -1.0, m)
    own = g[::-1].copy()  # this voter ranks the crowd's order upside down
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    y = (rng.random(n) < E.sigmoid(own[a] - own[b])).astype(float)
    return g, own, a, b, y


def test_a_flat_prior_gives_the_voters_own_bt_fit():
    g, _, a, b, y = voter_data()
    fit = P.fit_personal(a, b, y, g, prior_sd=1e4)
    mle = E.fit_bt(E.aggregate(a, b, y, 6)).theta
    assert np.allclose(fit.theta - fit.theta.mean(), mle - mle.mean(), atol=1e-5)


def test_a_tight_prior_gives_the_global_ratings():
    g, _, a, b, y = voter_data()
    fit = P.fit_personal(a, b, y, g, prior_sd=1e-4)
    assert np.allclose(fit.theta, g, atol=1e-5)


def test_map_is_stationary_and_intervals_are_the_inverse_hessian():
    g, _, a, b, y = voter_data(n=80, seed=3)
    sd = 0.5
    fit = P.fit_personal(a, b, y, g, prior_sd=sd)

    def objective(th):  # per battle, written out here
        p = 1 / (1 + np.exp(-(th[a] - th[b])))
        return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) + np.sum((th - g) ** 2) / (2 * sd**2)

    h = 1e-5
    eye = np.eye(6)
    grad = np.array([(objective(fit.theta + h * e) - objective(fit.theta - h * e)) / (2 * h) for e in eye])
    assert np.abs(grad).max() < 1e-5
    hh = 1e-4
    hess = np.array(
        [
            [
                (
                    objective(fit.theta + hh * (ei + ej))
                    - objective(fit.theta + hh * (ei - ej))
                    - objective(fit.theta - hh * (ei - ej))
                    + objective(fit.theta - hh * (ei + ej))
                )
                / (4 * hh * hh)
                for ej in eye
            ]
            for ei in eye
        ]
    )
    assert np.allclose(fit.se, np.sqrt(np.diag(np.linalg.inv(hess))), rtol=1e-3)


def test_only_met_models_are_fitted_and_the_board_says_where_the_voter_differs():
    g, own, a, b, y = voter_data(m=6, n=2000, seed=1)
    g7 = np.append(g, 0.3)  # a seventh model this voter never met
    fit = P.fit_personal(a, b, y, g7)
    assert fit.models.tolist() == list(range(6))
    names = [f"m{i}" for i in range(7)]
    rows, different = P.board(fit, E.theta_to_points(g7), names)
    assert [r["model"] for r in rows][0] == "m5" and {r["model"] for r in rows} == set(names[:6])
    assert np.array_equal(
        [r["rank"] for r in rows], E.rank_ub(np.array([r["lower"] for r in rows]), np.array([r["upper"] for r in rows]))
    )
    # the extremes of the crowd's order are where an upside-down voter differs most
    assert {d["model"] for d in different[:2]} == {"m0", "m5"}
    assert next(d for d in different if d["model"] == "m5")["direction"] == "higher"
    assert all(abs(x["z"]) >= abs(y_["z"]) for x, y_ in zip(different, different[1:], strict=False))


def test_shrinkage_predicts_a_differing_voter_better_than_global_or_unshrunk():
    # one measured case in miniature (bench/bench_personal.py has the full table)
    rng = np.random.default_rng(7)
    m = 12
    g = rng.normal(0, 1, m)
    losses = np.zeros(3)
    for _ in range(20):
        own = g + rng.normal(0, 0.7, m)
        n = 120
        a = rng.integers(0, m, n)
        b = (a + rng.integers(1, m, n)) % m
        y = (rng.random(n) < E.sigmoid(own[a] - own[b])).astype(float)
        tr = np.arange(n) < 90
        te = ~tr
        shr = P.full_theta(P.fit_personal(a[tr], b[tr], y[tr], g), g)
        mle = E.leaderboard(E.aggregate(a[tr], b[tr], y[tr], m), ci="none").theta
        for j, th in enumerate((g, mle, shr)):
            losses[j] += P.held_out_log_loss(th, a[te], b[te], y[te])
    assert losses[2] < losses[0] and losses[2] < losses[1]


# --------------------------------------------------------------------------
# endpoints


def make_votes(voter: Voter, n: int, *, seed: int = 0) -> None:
    """``n`` counted votes by ``voter`` who always prefers the model last in ORDER."""
    rng = random.Random(seed)
    models = {m.name: m for m in ArenaModel.objects.filter(name__in=ORDER)}
    batch = []
    for _ in range(n):
        a, b = rng.sample(ORDER, 2)
        winner = "a" if ORDER.index(a) > ORDER.index(b) else "b"
        batch.append(Vote(voter=voter, model_a=models[a], model_b=models[b], winner=winner))
    Vote.objects.bulk_create(batch)


def session_client(voter: Voter) -> Client:
    c = Client()
    session = c.session
    session["voter_key"] = voter.key
    session.save()
    # A signed-cookie session's key is its content: the client takes the new cookie.
    c.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return c


@pytest.fixture
def crowd(demo_models):
    add_votes(500)  # the crowd prefers the model first in ORDER
    return recompute_publish()


def test_below_twenty_votes_says_how_many_more(crowd):
    voter = Voter.objects.create(key="few-votes")
    make_votes(voter, 13)
    body = session_client(voter).get("/api/v1/me/leaderboard/").json()
    assert body["votes"] == 13 and body["needed"] == 7 and body["models"] == []
    page = session_client(voter).get("/leaderboard/me/").content.decode()
    assert 'id="personal-needed"' in page and "<b>7</b> more times" in page


def test_a_voter_sees_their_own_board_and_nobody_else_does(crowd):
    voter = Voter.objects.create(key="contrarian")
    make_votes(voter, 200)
    excluded = Vote.objects.filter(voter=voter).order_by("id")[:10].values_list("id", flat=True)
    Vote.objects.filter(id__in=list(excluded)).update(excluded=True, exclusion_reason="test")
    mine = session_client(voter).get("/api/v1/me/leaderboard/")
    assert mine.status_code == 200 and "no-store" in mine["Cache-Control"] and "private" in mine["Cache-Control"]
    body = mine.json()
    assert body["votes"] == 190 and body["needed"] == 0 and body["snapshot"] == crowd.id
    models = [r["model"] for r in body["models"]]
    assert set(models) == set(ORDER)
    # they always preferred the crowd's last model: it rises above the crowd's favourite
    rating = {r["model"]: r for r in body["models"]}
    assert rating[ORDER[-1]]["rating"] > rating[ORDER[0]]["rating"]
    assert rating[ORDER[-1]]["difference"] > 0 > rating[ORDER[0]]["difference"]
    assert body["most_different"][0]["model"] in (ORDER[0], ORDER[-1])
    for r in body["models"]:
        assert r["lower"] < r["rating"] < r["upper"]
    # a stranger, and an anonymous visitor, see only their own (empty) state
    stranger = Voter.objects.create(key="stranger")
    other = session_client(stranger).get("/api/v1/me/leaderboard/").json()
    assert other["votes"] == 0 and other["needed"] == 20 and other["models"] == []
    voters_before = Voter.objects.count()
    anon = Client().get("/api/v1/me/leaderboard/").json()
    assert anon["votes"] == 0 and anon["models"] == []
    assert Voter.objects.count() == voters_before  # reading creates no voter
    page = session_client(voter).get("/leaderboard/me/").content.decode()
    assert 'id="personal"' in page and 'id="most-different"' in page and ORDER[-1] in page


def test_an_account_is_its_own_voter(crowd):
    user = get_user_model().objects.create_user("ada", password="x")
    voter = Voter.objects.create(key=f"user:{user.pk}", user=user)
    make_votes(voter, 25, seed=4)
    c = Client()
    c.force_login(user)
    body = c.get("/api/v1/me/leaderboard/").json()
    assert body["votes"] == 25 and body["models"]


def test_own_votes_download_is_jsonl_of_exactly_their_votes(crowd):
    voter = Voter.objects.create(key="downloader")
    make_votes(voter, 30, seed=2)
    resp = session_client(voter).get("/api/v1/me/votes/")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/x-ndjson")
    assert "no-store" in resp["Cache-Control"] and "attachment" in resp["Content-Disposition"]
    lines = [json.loads(x) for x in b"".join(resp.streaming_content).decode().splitlines()]
    assert len(lines) == 30
    ids = set(Vote.objects.filter(voter=voter).values_list("id", flat=True))
    assert {r["id"] for r in lines} == ids
    assert all(r["model_a"] in ORDER and r["winner"] in ("a", "b") for r in lines)
    stranger = Voter.objects.create(key="stranger-2")
    assert b"".join(session_client(stranger).get("/api/v1/me/votes/").streaming_content) == b""
    assert b"".join(Client().get("/api/v1/me/votes/").streaming_content) == b""
