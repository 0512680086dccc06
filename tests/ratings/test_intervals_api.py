"""Simultaneous intervals and the tie model through the real pipeline: votes in
the database, recompute_publish, then /api/v1/leaderboard/?intervals= and the
leaderboard page's toggle."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rest_framework.test import APIClient

from arena.models import ArenaModel
from ratings import engine
from ratings.models import SnapshotView
from ratings.services import recompute_publish
from tests.ratings.test_ratings_api import ORDER, add_votes


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def published(demo_models):
    add_votes(600)
    return recompute_publish()


def test_every_view_stores_simultaneous_bounds_around_the_marginal_ones(published):
    views = list(SnapshotView.objects.filter(snapshot=published))
    assert any(v.style_control for v in views) and len(views) >= 3
    for v in views:
        for r in v.rows:
            assert r["lower_sim"] < r["lower"] < r["rating"] < r["upper"] < r["upper_sim"], (v.key, r)
    assert published.params["ties"] == "half" and published.params["tie_param"] is None


def test_api_default_is_marginal_and_says_so(client, published):
    body = client.get("/api/v1/leaderboard/").json()
    assert body["intervals"] == "marginal"
    # Stored rows name models by id; the registry gives their names.
    names = dict(ArenaModel.objects.values_list("id", "name"))
    stored = {
        names[r["model_id"]]: r
        for r in SnapshotView.objects.get(snapshot=published, key="overall", style_control=False).rows
    }
    for m in body["models"]:
        assert (m["lower"], m["upper"]) == (stored[m["model"]]["lower"], stored[m["model"]]["upper"])


@pytest.mark.parametrize("style", [False, True])
def test_simultaneous_intervals_are_wider_and_rank_ub_comes_from_them(client, published, style):
    flag = "&style_control=true" if style else ""
    marginal = client.get(f"/api/v1/leaderboard/?intervals=marginal{flag}").json()
    sim = client.get(f"/api/v1/leaderboard/?intervals=simultaneous{flag}").json()
    assert sim["intervals"] == "simultaneous" and marginal["intervals"] == "marginal"
    by = {m["model"]: m for m in marginal["models"]}
    for m in sim["models"]:
        assert m["rating"] == by[m["model"]]["rating"]
        assert m["upper"] - m["lower"] > by[m["model"]]["upper"] - by[m["model"]]["lower"]
    lower = np.array([m["lower"] for m in sim["models"]])
    upper = np.array([m["upper"] for m in sim["models"]])
    assert [m["rank"] for m in sim["models"]] == engine.rank_ub(lower, upper).tolist()
    # wider intervals separate fewer models
    assert all(m["rank"] <= by[m["model"]]["rank"] for m in sim["models"])
    # with 600 votes over 5 models the marginal ranks separate more than the joint ones
    assert sum(m["rank"] for m in sim["models"]) < sum(m["rank"] for m in marginal["models"]) or style


def test_unknown_intervals_is_a_400_in_the_error_shape(client, published):
    resp = client.get("/api/v1/leaderboard/?intervals=joint")
    assert resp.status_code == 400
    body = resp.json()
    assert {"error", "detail"} <= set(body) and "intervals" in str(body["detail"]) + str(body.get("fields"))


def test_a_snapshot_without_simultaneous_bounds_answers_404_not_500(client, published):
    view = SnapshotView.objects.get(snapshot=published, key="overall", style_control=False)
    view.rows = [{k: v for k, v in r.items() if not k.endswith("_sim")} for r in view.rows]
    view.save(update_fields=["rows"])
    resp = client.get("/api/v1/leaderboard/?intervals=simultaneous")
    assert resp.status_code == 404 and resp.json()["error"] and "simultaneous" in resp.json()["detail"]
    assert client.get("/api/v1/leaderboard/").status_code == 200


def test_site_default_can_be_simultaneous(client, published, settings):
    settings.ARENA_LEADERBOARD_INTERVALS = "simultaneous"
    body = client.get("/api/v1/leaderboard/").json()
    assert body["intervals"] == "simultaneous"
    assert client.get("/api/v1/leaderboard/?intervals=marginal").json()["intervals"] == "marginal"


def test_ratings_ties_davidson_publishes_its_tie_parameter(demo_models, settings, client):
    add_votes(600, tie_every=4)
    half = recompute_publish()
    settings.RATINGS_TIES = "davidson"
    dav = recompute_publish()  # same votes, other tie model: a new snapshot, not the old one
    assert dav.id != half.id
    assert dav.params["ties"] == "davidson"
    nu = dav.params["tie_param"]
    assert 0 < nu["lower"] < nu["nu"] < nu["upper"]
    assert recompute_publish().id == dav.id  # and then idempotent again
    names = dict(ArenaModel.objects.values_list("id", "name"))
    rows = {
        names[r["model_id"]]: r["rating"]
        for r in SnapshotView.objects.get(snapshot=dav, key="overall", style_control=False).rows
    }
    old = {
        names[r["model_id"]]: r["rating"]
        for r in SnapshotView.objects.get(snapshot=half, key="overall", style_control=False).rows
    }
    # a tie is evidence of nearness, not half a win: the spread differs
    assert np.ptp(list(rows.values())) != pytest.approx(np.ptp(list(old.values())), abs=0.5)
    assert max(rows, key=rows.get) == ORDER[0]


def test_page_toggle_switches_intervals_and_keeps_them_in_links(published):
    from django.test import Client

    c = Client()
    plain = c.get("/leaderboard/").content.decode()
    toggle = re.search(r'<a class="toggle" id="toggle-intervals" href="([^"]+)"[^>]*aria-checked="(\w+)"', plain)
    assert toggle and toggle.group(2) == "false" and "intervals=simultaneous" in toggle.group(1)
    page = c.get(toggle.group(1).replace("&amp;", "&")).content.decode()
    assert re.search(r'id="toggle-intervals"[^>]*aria-checked="true"', page)
    assert "simultaneous: all models inside at once" in page
    style = re.search(r'id="toggle-style" href="([^"]+)"', page).group(1)
    assert "intervals=simultaneous" in style
    # the table shows the simultaneous bounds
    api = APIClient().get("/api/v1/leaderboard/?intervals=simultaneous").json()
    top = api["models"][0]
    assert f"{top['lower']:.0f}" in page and f"{top['upper']:.0f}" in page
    bad = c.get("/leaderboard/?intervals=joint")
    assert bad.status_code == 400 and "intervals" in bad.content.decode()
