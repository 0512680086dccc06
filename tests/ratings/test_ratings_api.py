"""The ratings API over published snapshots: views, history, models, matrices,
snapshots, categories, cache validators and errors."""

from __future__ import annotations

import json
import random

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from arena.models import ArenaModel, Voter
from ratings.models import Snapshot
from ratings.services import recompute_publish
from votes.models import Vote
from votes.services import text_features

ORDER = ["atlas-7b", "ember-20b", "cobalt-13b", "breeze-3b", "dune-1b"]


def add_votes(n: int, seed: int = 0, *, code_every: int = 4, tie_every: int = 7) -> None:
    """Votes where the earlier model in ORDER usually wins; some coding prompts and ties."""
    rng = random.Random(seed)
    models = {m.name: m for m in ArenaModel.objects.filter(name__in=ORDER)}
    voter, _ = Voter.objects.get_or_create(key="api-test")
    batch = []
    for k in range(n):
        a, b = rng.sample(ORDER, 2)
        better = a if ORDER.index(a) < ORDER.index(b) else b
        if k % tie_every == 0:
            winner = "tie"
        else:
            winning = better if rng.random() < 0.8 else (b if better == a else a)
            winner = "a" if winning == a else "b"
        prompt = "def f(x): return x" if k % code_every == 0 else "Tell me about the sea and the sky"
        batch.append(
            Vote(
                voter=voter,
                model_a=models[a],
                model_b=models[b],
                winner=winner,
                **text_features(prompt, ["# Title\n- item **bold** " * (1 + k % 3)], ["plain words"]),
            )
        )
    Vote.objects.bulk_create(batch)


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def published(demo_models):
    add_votes(400)
    return recompute_publish()


def test_leaderboard_orders_models_and_reports_the_snapshot(client, published):
    body = client.get("/api/v1/leaderboard/").json()
    assert [m["model"] for m in body["models"]] == ORDER
    assert body["votes"] == 400 and body["snapshot"] == published.id and body["category"] == "overall"
    row = body["models"][0]
    assert row["lower"] < row["rating"] < row["upper"] and row["organization"] and row["license"]


def test_categories_style_control_and_unknown_category(client, published):
    cats = client.get("/api/v1/categories/").json()["categories"]
    keys = {(c["key"], c["style_control"]) for c in cats}
    assert {("overall", False), ("coding", False), ("no_ties", False), ("overall", True)} <= keys
    coding = next(c for c in cats if c["key"] == "coding")
    assert coding["votes"] == 100
    styled = client.get("/api/v1/leaderboard/?style_control=true").json()
    assert set(styled["style_coefficients"]) == {"tokens", "headers", "list_items", "bold"}
    no_ties = client.get("/api/v1/leaderboard/?category=no_ties").json()
    assert no_ties["votes"] < 400 and sum(m["battles"] for m in no_ties["models"]) == 2 * no_ties["votes"]
    missing = client.get("/api/v1/leaderboard/?category=poetry")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad = client.get("/api/v1/leaderboard/?style_control=maybe")
    assert bad.status_code == 400 and "style_control" in json.dumps(bad.json())


def test_deprecated_models_are_hidden_unless_asked_for(client, published):
    ArenaModel.objects.filter(name="dune-1b").update(status=ArenaModel.Status.DEPRECATED)
    recompute_publish(force=True)
    shown = [m["model"] for m in client.get("/api/v1/leaderboard/").json()["models"]]
    assert "dune-1b" not in shown
    everything = client.get("/api/v1/leaderboard/?include_deprecated=true").json()["models"]
    assert "dune-1b" in [m["model"] for m in everything]


def test_preliminary_flag_follows_the_vote_minimum(client, published, settings):
    settings.RATINGS_MIN_VOTES = 10_000
    rows = client.get("/api/v1/leaderboard/").json()["models"]
    assert all(r["preliminary"] for r in rows)
    settings.RATINGS_MIN_VOTES = 1
    rows = client.get("/api/v1/leaderboard/").json()["models"]
    assert not any(r["preliminary"] for r in rows)


def test_etag_and_last_modified_allow_revalidation(client, published):
    first = client.get("/api/v1/leaderboard/")
    etag = first["ETag"]
    assert etag and first["Last-Modified"]
    again = client.get("/api/v1/leaderboard/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    other_view = client.get("/api/v1/leaderboard/?category=coding", HTTP_IF_NONE_MATCH=etag)
    assert other_view.status_code == 200
    add_votes(20, seed=9)
    recompute_publish()
    assert client.get("/api/v1/leaderboard/", HTTP_IF_NONE_MATCH=etag).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/v1/leaderboard/", "/api/v1/models/atlas-7b/", "/api/v1/matrix/", "/api/v1/categories/", "snapshot"],
)
def test_if_none_match_is_compared_weakly_in_lists_and_with_a_star(client, published, path):
    """A proxy that compresses a response turns its ETag weak (W/"…"); a
    client may send several tags: each form names the same answer (RFC 9110
    §13.1.2 compares If-None-Match weakly)."""
    if path == "snapshot":
        path = f"/api/v1/snapshots/{Snapshot.objects.get().id}/"
    first = client.get(path)
    etag = first["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and first["Last-Modified"]
    for header in (etag, f"W/{etag}", f'"stale", W/{etag}', f'W/"stale",{etag}', "*"):
        again = client.get(path, HTTP_IF_NONE_MATCH=header)
        assert again.status_code == 304, (header, again.status_code)
        assert again["ETag"] == etag and again["Last-Modified"] == first["Last-Modified"]
        assert again["Cache-Control"] == "public, max-age=0, must-revalidate"
        assert again.content == b""
    for header in ('"stale"', 'W/"stale", "other"', etag[:-1] + 'x"'):
        assert client.get(path, HTTP_IF_NONE_MATCH=header).status_code == 200, header


def test_a_bad_query_is_refused_before_any_revalidation(client, published):
    etag = client.get("/api/v1/leaderboard/")["ETag"]
    response = client.get("/api/v1/leaderboard/?style_control=maybe", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 400 and response.json()["error"]


def test_history_lists_each_snapshot(client, published):
    add_votes(50, seed=3)
    recompute_publish()
    body = client.get("/api/v1/leaderboard/history/?model=atlas-7b").json()
    assert body["count"] == 2
    assert [p["snapshot"] for p in body["results"]] == sorted((p["snapshot"] for p in body["results"]), reverse=True)
    assert client.get("/api/v1/leaderboard/history/").status_code == 400
    assert client.get("/api/v1/leaderboard/history/?model=nobody").status_code == 404


def test_model_card_has_ratings_per_category_and_opponents(client, published):
    card = client.get("/api/v1/models/atlas-7b/").json()
    assert card["organization"] and {r["category"] for r in card["ratings"]} >= {"overall", "coding"}
    opponents = {o["opponent"]: o for o in card["opponents"]}
    assert set(opponents) == set(ORDER) - {"atlas-7b"}
    assert all(0.5 < o["win_rate"] <= 1 for o in opponents.values())
    assert client.get("/api/v1/models/nobody/").status_code == 404
    listing = client.get("/api/v1/models/?limit=2").json()
    assert listing["count"] == 5 and len(listing["results"]) == 2 and listing["next"]


def test_matrices_are_consistent(client, published):
    wr = client.get("/api/v1/matrix/?kind=winrate").json()
    cnt = client.get("/api/v1/matrix/?kind=count").json()
    pred = client.get("/api/v1/matrix/?kind=predicted").json()
    names = wr["models"]
    assert names == cnt["models"] == pred["models"] == ORDER
    n = len(names)
    for i in range(n):
        for j in range(n):
            if i != j:
                assert wr["matrix"][i][j] + wr["matrix"][j][i] == pytest.approx(1.0)
                assert cnt["matrix"][i][j] == cnt["matrix"][j][i]
                assert pred["matrix"][i][j] + pred["matrix"][j][i] == pytest.approx(1.0, abs=1e-5)
    assert sum(cnt["matrix"][0]) == client.get("/api/v1/leaderboard/").json()["models"][0]["battles"]
    assert client.get("/api/v1/matrix/?kind=heat").status_code == 400


def test_snapshots_record_parameters_and_fingerprint(client, published):
    listing = client.get("/api/v1/snapshots/").json()
    assert listing["count"] == 1
    detail = client.get(f"/api/v1/snapshots/{published.id}/").json()
    assert detail["method"] == "bt" and detail["ci"] == "sandwich" and detail["vote_count"] == 400
    assert len(detail["fingerprint"]) == 64 and detail["params"]["scale"] == 400
    assert {v["key"] for v in detail["views"]} >= {"overall", "coding"}
    assert client.get("/api/v1/snapshots/999999/").status_code == 404


def test_requesting_a_recompute_is_for_the_admin_group_only(client, published):
    from django.contrib.auth.models import Group

    from arena.roles import ADMIN, MODERATOR
    from ratings.models import RecomputeRun

    assert client.post("/api/v1/snapshots/", {"ci": "bootstrap"}, format="json").status_code in (401, 403)
    users = get_user_model().objects
    moderator = users.create_user("mod", password="pw", is_staff=True)
    moderator.groups.add(Group.objects.get(name=MODERATOR))
    plain_staff = users.create_user("staff", password="pw", is_staff=True)
    for refused in (moderator, plain_staff):
        client.force_authenticate(refused)
        response = client.post("/api/v1/snapshots/", {"ci": "bootstrap", "rounds": 1000}, format="json")
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "permission_denied" and "admin group" in response.json()["detail"]
    assert not RecomputeRun.objects.exists()

    admin = users.create_user("op", password="pw", is_staff=True)
    admin.groups.add(Group.objects.get(name=ADMIN))
    client.force_authenticate(admin)
    assert client.post("/api/v1/snapshots/", {"ci": "sideways"}, format="json").status_code == 400
    superuser = users.create_superuser("root", password="pw")
    client.force_authenticate(superuser)
    assert client.post("/api/v1/snapshots/", {"ci": "sideways"}, format="json").status_code == 400


def test_fingerprint_is_sha256_of_the_counted_vote_ids(published):
    import hashlib

    import numpy as np

    ids = np.array(sorted(Vote.objects.filter(excluded=False).values_list("id", flat=True)), dtype="<i8")
    assert published.fingerprint == hashlib.sha256(ids.tobytes()).hexdigest()


def test_unchanged_votes_do_not_publish_a_duplicate_snapshot(published):
    assert recompute_publish().id == published.id
    assert Snapshot.objects.count() == 1
    vote = Vote.objects.order_by("id").first()
    Vote.objects.filter(id=vote.id).update(excluded=True, exclusion_reason="test")
    newer = recompute_publish()
    assert newer.id != published.id and newer.vote_count == 399


def test_bootstrap_snapshot_is_served_on_request(client, published):
    assert client.get("/api/v1/leaderboard/?ci=bootstrap").status_code == 404
    recompute_publish(ci="bootstrap", rounds=30)
    body = client.get("/api/v1/leaderboard/?ci=bootstrap").json()
    assert body["ci"] == "bootstrap" and len(body["models"]) == 5
    # the default view keeps serving the newest snapshot, whatever its method
    assert client.get("/api/v1/leaderboard/?ci=sandwich").json()["ci"] == "sandwich"


def test_errors_outside_views_have_the_api_shape(client, published):
    missing = client.get("/api/v1/no-such-thing/")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    staff = get_user_model().objects.create_superuser("op", password="pw")
    client.force_authenticate(staff)
    listed = client.post("/api/v1/snapshots/", [1, 2], format="json")  # a list, not an object
    assert listed.status_code == 400 and listed.json()["error"] == "invalid"
    rounds = client.post("/api/v1/snapshots/", {"ci": "bootstrap", "rounds": 5}, format="json")
    assert rounds.status_code == 400 and "rounds" in rounds.json()["fields"]


def test_any_query_gets_a_valid_etag_and_the_same_body_every_time(client, published):
    odd = client.get("/api/v1/leaderboard/", {"category": "overall", "x": "é\r\n\U0001f600"})
    assert odd.status_code == 200 and odd["ETag"].isascii()
    first, again = client.get("/api/v1/leaderboard/"), client.get("/api/v1/leaderboard/")
    assert first.content == again.content and first["ETag"] == again["ETag"] == odd["ETag"]
    assert first["Content-Type"] == "application/json"
    page = client.get("/api/v1/leaderboard/", HTTP_ACCEPT="text/html")  # the browsable API renders itself
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert [m["model"] for m in first.json()["models"]] == ORDER


def test_nul_characters_are_refused_not_sent_to_the_database(client, published):
    for url in ("/api/v1/leaderboard/?category=a%00b", "/api/v1/matrix/?category=%00",
                "/api/v1/leaderboard/history/?model=x%00"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 400 and response.json()["error"] == "invalid", url
    assert client.get("/api/v1/models/a%00b/").status_code == 404


def test_a_staff_recompute_is_a_run_whose_redelivered_task_publishes_no_duplicate(client, published):
    from ratings.models import RecomputeRun, Snapshot
    from ratings.tasks import recompute

    client.force_authenticate(get_user_model().objects.create_superuser("op2", password="pw"))
    queued = client.post("/api/v1/snapshots/", {"ci": "sandwich"}, format="json")
    assert queued.status_code == 202
    run = RecomputeRun.objects.get(id=queued.json()["run"])
    assert run.force and run.status == RecomputeRun.Status.QUEUED
    before = Snapshot.objects.count()

    first = recompute(ci=run.ci, rounds=run.rounds, force=True, run_id=run.id)  # the worker's delivery
    again = recompute(ci=run.ci, rounds=run.rounds, force=True, run_id=run.id)  # Celery redelivers it

    assert first is not None and again is None
    assert Snapshot.objects.count() == before + 1
    assert RecomputeRun.objects.get(id=run.id).snapshot_id == first
