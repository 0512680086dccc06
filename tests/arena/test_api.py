"""The voter-facing REST API: its contract, and what bad input gets back."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from django.test import Client

from arena.models import ArenaModel, Battle, Voter
from ratings.services import recompute_publish
from votes.models import Vote

from .factories import VoterFactory
from .helpers import demo_answer_authors, demo_prompts, open_battle, vote

pytestmark = pytest.mark.django_db


# --- the contract -------------------------------------------------------------


def test_open_battle_returns_an_anonymous_prompt_and_two_answers(client, demo_models):
    body = open_battle(client)

    assert set(body) == {"id", "prompt", "responses", "status", "turns"}
    assert set(body["responses"]) == {"a", "b"}
    assert body["status"] == "ready"
    assert body["turns"] == [{"prompt": body["prompt"], **body["responses"]}]
    uuid.UUID(body["id"])
    assert body["prompt"] in demo_prompts()
    authors = demo_answer_authors()
    author_a, author_b = authors[body["responses"]["a"]], authors[body["responses"]["b"]]
    assert author_a != author_b
    battle = Battle.objects.get(id=body["id"])
    assert (battle.model_a.name, battle.model_b.name) == (author_a, author_b)
    assert battle.status == Battle.Status.READY


def test_vote_is_stored_and_reveals_the_models_in_side_order(client, demo_models):
    battle = open_battle(client)

    response = vote(client, battle["id"], "b")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"winner", "model_a", "model_b"}
    authors = demo_answer_authors()
    assert body == {
        "winner": "b",
        "model_a": authors[battle["responses"]["a"]],
        "model_b": authors[battle["responses"]["b"]],
    }
    stored = Vote.objects.get(battle_id=battle["id"])
    assert (stored.winner, stored.model_a.name, stored.model_b.name) == ("b", body["model_a"], body["model_b"])
    assert Battle.objects.get(id=battle["id"]).status == Battle.Status.VOTED


@pytest.mark.parametrize("winner", ["a", "b", "tie", "both_bad"])
def test_every_winner_value_is_accepted(client, demo_models, winner):
    battle = open_battle(client)
    response = vote(client, battle["id"], winner)
    assert response.status_code == 201
    assert Vote.objects.get(battle_id=battle["id"]).winner == winner


def test_leaderboard_is_empty_before_the_first_snapshot(client):
    response = client.get("/api/v1/leaderboard/")
    assert response.status_code == 200
    body = response.json()
    assert (body["updated_at"], body["votes"], body["models"]) == (None, 0, [])


def test_leaderboard_lists_the_newest_snapshot(client, demo_models):
    for winner in ["a", "b", "a", "tie", "a", "both_bad"]:
        battle = open_battle(client)
        assert vote(client, battle["id"], winner).status_code == 201
    snapshot = recompute_publish()

    body = client.get("/api/v1/leaderboard/").json()

    assert {"updated_at", "votes", "models"} <= set(body)
    assert body["votes"] == 6 == snapshot.vote_count
    assert body["updated_at"].startswith(snapshot.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert body["models"], "a snapshot with votes lists models"
    names = {m.name for m in demo_models}
    for row in body["models"]:
        assert {"model", "rating", "lower", "upper", "rank", "battles"} <= set(row)
        assert row["model"] in names
        assert row["lower"] <= row["rating"] <= row["upper"]
        # Six votes: every model is under RATINGS_MIN_VOTES, so unranked, with the reason.
        assert row["rank"] is None and row["preliminary"] and "few_votes" in row["flags"] and row["battles"] >= 1
    assert sum(row["battles"] for row in body["models"]) == 2 * 6
    ratings = [row["rating"] for row in body["models"]]
    assert ratings == sorted(ratings, reverse=True)  # unranked rows are listed by rating


def test_openapi_schema_describes_the_battle_vote_and_leaderboard_calls(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert "post" in paths["/api/v1/battles/"]
    assert "post" in paths["/api/v1/battles/{battle_id}/vote/"]
    assert "get" in paths["/api/v1/leaderboard/"]
    vote_body = schema["components"]["schemas"]["VoteIn"]
    assert "winner" in vote_body["properties"]

    as_json = client.get("/api/schema/?format=json")
    assert as_json.status_code == 200
    assert json.loads(as_json.content)["paths"].keys() == paths.keys()


def test_api_docs_page_renders_from_bundled_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "/api/schema/" in html
    # Served from the installed sidecar package, never a CDN: the page works offline.
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assets = [part.split('"')[0] for part in html.split('"/static/')[1:]]
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    for asset in assets:
        assert client.get("/static/" + asset).status_code == 200, asset


# --- bad input: a clear 4xx with a message, and nothing changes -------------


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("detail"), str) and len(body["detail"]) > 5, body
    if code:
        assert body["error"] == code
    return body


def test_voting_twice_is_rejected_and_keeps_the_first_vote(client, demo_models):
    battle = open_battle(client)
    assert vote(client, battle["id"], "a").status_code == 201

    body = assert_error(vote(client, battle["id"], "b"), 409, "already_voted")

    assert "already" in body["detail"]
    assert list(Vote.objects.values_list("battle_id", "winner")) == [(uuid.UUID(battle["id"]), "a")]


def test_voting_on_another_sessions_battle_is_not_found_and_stores_nothing(client, demo_models):
    battle = open_battle(client)
    stranger = Client()

    body = assert_error(vote(stranger, battle["id"], "a"), 404, "battle_not_found")

    assert "battle" in body["detail"]
    assert Vote.objects.count() == 0
    # The owner can still vote on it.
    assert vote(client, battle["id"], "a").status_code == 201


def test_voting_on_a_battle_that_does_not_exist_is_not_found(client, demo_models):
    open_battle(client)
    assert_error(vote(client, str(uuid.uuid4()), "a"), 404, "battle_not_found")
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("winner", ["c", "A", "", "model_a", None, 1, ["a"]])
def test_unknown_winner_is_rejected_with_the_allowed_values(client, demo_models, winner):
    battle = open_battle(client)

    body = assert_error(vote(client, battle["id"], winner), 400, "invalid")

    assert body["detail"].startswith("winner:")
    if winner not in (None, ""):
        assert all(f'"{w}"' in body["detail"] for w in ("a", "b", "tie", "both_bad")), body["detail"]
    assert "winner" in body["fields"]
    assert Vote.objects.count() == 0
    assert Battle.objects.get(id=battle["id"]).status == Battle.Status.READY


@pytest.mark.parametrize(
    "payload",
    ['{"winner": "a"', "{'winner': 'a'}", "winner=a", "\x00\xff", '{"winner": "a"}}', "   "],
    ids=["truncated", "single-quotes", "form-syntax", "binary", "trailing-brace", "whitespace"],
)
def test_malformed_json_is_rejected(client, demo_models, payload):
    battle = open_battle(client)
    response = client.post(f"/api/v1/battles/{battle['id']}/vote/", data=payload, content_type="application/json")

    body = assert_error(response, 400, "parse_error")

    assert "JSON" in body["detail"]
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("payload", ['"a"', '["a"]', "null", "42"], ids=["string", "list", "null", "number"])
def test_json_that_is_not_an_object_is_rejected(client, demo_models, payload):
    battle = open_battle(client)
    response = client.post(f"/api/v1/battles/{battle['id']}/vote/", data=payload, content_type="application/json")
    assert_error(response, 400, "invalid")
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    "post",
    [
        lambda c, url: c.post(url, data="", content_type="application/json"),
        lambda c, url: c.post(url),
        lambda c, url: c.generic("POST", url, b"", content_type=""),
    ],
    ids=["empty-json", "no-body", "no-content-type"],
)
def test_empty_body_is_rejected_as_missing_winner(client, demo_models, post):
    battle = open_battle(client)
    response = post(client, f"/api/v1/battles/{battle['id']}/vote/")

    body = assert_error(response, 400)

    assert "winner" in body["detail"] and "required" in body["detail"]
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    "content_type,payload",
    [("text/plain", "a"), ("text/plain", '{"winner": "a"}'), ("application/xml", "<winner>a</winner>")],
)
def test_non_json_body_is_rejected_as_unsupported(client, demo_models, content_type, payload):
    battle = open_battle(client)
    response = client.post(f"/api/v1/battles/{battle['id']}/vote/", data=payload, content_type=content_type)

    body = assert_error(response, 415, "unsupported_media_type")

    assert content_type in body["detail"]
    assert Vote.objects.count() == 0


def test_wrong_method_is_a_json_error(client, demo_models):
    battle = open_battle(client)
    assert_error(client.get(f"/api/v1/battles/{battle['id']}/vote/"), 405, "method_not_allowed")
    assert Vote.objects.count() == 0


def test_banned_voter_cannot_vote(client, demo_models):
    battle = open_battle(client)
    Voter.objects.filter(battles__id=battle["id"]).update(banned=True)

    assert_error(vote(client, battle["id"], "a"), 400, "vote_rejected")

    assert Vote.objects.count() == 0


def test_no_battle_possible_is_a_clear_503(client, db):
    VoterFactory()
    response = client.post("/api/v1/battles/", data={}, content_type="application/json")
    body = assert_error(response, 503, "no_battle_available")
    assert "answer set" in body["detail"]
    assert Battle.objects.count() == 0


def test_no_battle_when_only_one_model_is_active(client, demo_models):
    ArenaModel.objects.exclude(name=demo_models[0].name).update(status=ArenaModel.Status.PAUSED)
    assert_error(client.post("/api/v1/battles/", data={}, content_type="application/json"), 503)


@pytest.mark.django_db
def test_vote_on_a_malformed_battle_id_is_a_json_404():
    client = Client()
    before = Vote.objects.count()
    resp = client.post("/api/v1/battles/not-a-uuid/vote/", {"winner": "a"}, content_type="application/json")
    assert resp.status_code == 404
    assert resp.json()["error"] == "battle_not_found"
    assert Vote.objects.count() == before
