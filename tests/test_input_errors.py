"""Bad input is a 4xx in the API's error shape and writes nothing; never a 500
(issue #12 item 5): JSON nested too deep, a body over the upload limit,
integers out of range, NUL characters in imported files."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from arena.models import Answer, ArenaModel, Question
from tests.arena.helpers import open_battle
from votes.models import Vote

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"], body
    return body


def test_json_nested_a_thousand_deep_is_a_400_not_a_recursion_error(demo_models):
    voter = Client()
    battle = open_battle(voter)
    deep = "[" * 1000 + "]" * 1000
    assert len(deep) <= 2048
    response = voter.post(f"/api/v1/battles/{battle['id']}/vote/", data=deep, content_type="application/json")
    assert_error(response, 400, "too_deep")
    nested = '{"winner": "a", "x": ' + "[" * 40 + "1" + "]" * 40 + "}"
    response = voter.post(f"/api/v1/battles/{battle['id']}/vote/", data=nested, content_type="application/json")
    assert_error(response, 400, "too_deep")
    assert not Vote.objects.exists()
    # An ordinary body still votes.
    response = voter.post(
        f"/api/v1/battles/{battle['id']}/vote/", data={"winner": "a"}, content_type="application/json"
    )
    assert response.status_code == 201


def test_malformed_json_keeps_its_parse_error(demo_models):
    voter = Client()
    battle = open_battle(voter)
    response = voter.post(f"/api/v1/battles/{battle['id']}/vote/", data="{", content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_a_body_over_the_upload_limit_is_a_413_in_the_error_shape(demo_models, settings):
    voter = Client()
    battle = open_battle(voter)
    big = json.dumps({"winner": "a", "pad": "x" * (10 * 1024 * 1024)})
    for url in (f"/api/v1/battles/{battle['id']}/vote/", "/api/v1/battles/"):
        response = voter.post(url, data=big, content_type="application/json")
        body = assert_error(response, 413, "payload_too_large")
        assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["detail"]
    # A form body over the limit (Django's own RequestDataTooBig) too.
    response = voter.post(
        "/api/v1/battles/", data="a=" + "x" * (3 * 1024 * 1024), content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 413, "payload_too_large")
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "limit=99999999999999999999",
        "offset=99999999999999999999",
        "limit=-1",
        "limit=abc",
        "offset=1.5",
        "limit=0",
        "limit=10001",
    ],
)
def test_out_of_range_page_parameters_are_a_400(client, query):
    for url in ("/api/v1/snapshots/", "/api/v1/models/"):
        body = assert_error(client.get(f"{url}?{query}"), 400, "invalid")
        assert query.split("=")[0] in body["fields"]


def test_in_range_page_parameters_still_page(client, demo_models):
    body = client.get("/api/v1/models/?limit=2&offset=1").json()
    assert body["count"] == len(demo_models) and len(body["results"]) == 2
    assert client.get("/api/v1/snapshots/?limit=10000&offset=2147483647").json()["results"] == []


def test_a_snapshot_id_past_bigint_is_a_404(client):
    assert_error(client.get("/api/v1/snapshots/99999999999999999999/"), 404, "not_found")


def answer_dir(tmp_path, answer_text: str):
    root = tmp_path / "nul_bench"
    (root / "model_answer").mkdir(parents=True)
    (root / "question.jsonl").write_text(json.dumps({"question_id": 1, "turns": ["Say hi."]}) + "\n")
    rows = [
        {"question_id": 1, "model_id": "kite-2b", "choices": [{"index": 0, "turns": ["hi"]}]},
        {"question_id": 1, "model_id": "kite-2b-nul", "choices": [{"index": 0, "turns": [answer_text]}]},
    ]
    (root / "model_answer" / "kite.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_import_answers_with_a_nul_character_names_the_line_and_writes_nothing(tmp_path):
    root = answer_dir(tmp_path, "bad \x00 answer")
    with pytest.raises(CommandError) as err:
        call_command("import_answers", str(root), stdout=io.StringIO(), stderr=io.StringIO())
    assert f"{root / 'model_answer' / 'kite.jsonl'}:2: contains a NUL character" in str(err.value)
    assert not (Answer.objects.exists() or Question.objects.exists() or ArenaModel.objects.exists())


def test_import_battles_with_a_nul_character_names_the_line_and_writes_nothing(tmp_path):
    rows = [
        {"model_a": "alpha", "model_b": "beta", "winner": "model_a", "judge": "j1"},
        {"model_a": "alpha\x00", "model_b": "beta", "winner": "model_b", "judge": "j1"},
        {"model_a": "alpha", "model_b": "beta", "winner": "tie", "judge": "j\x002"},
    ]
    path = tmp_path / "nul.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(CommandError) as err:
        call_command("import_battles", str(path), stdout=io.StringIO(), stderr=io.StringIO(), no_progress=True)
    message = str(err.value)
    assert f"{path}:2: model_a " in message and "contains a NUL character (U+0000)" in message
    assert f"{path}:3: judge contains a NUL character" in message
    assert not Vote.objects.exists() and not ArenaModel.objects.exists()
