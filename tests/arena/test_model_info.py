"""``import_answers``: model names checked with FILE:LINE, and model metadata
in bulk from ``model_info.jsonl`` (or ``--models FILE``); the admin filters
models by answer set."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError
from django.test import Client
from django.urls import reverse

from arena.models import ArenaModel
from arena.roles import ADMIN
from tests.admin.conftest import client_for, staff
from tests.arena.factories import ArenaModelFactory
from tests.arena.test_import_answers import answer_dir, answer_row, jsonl, run, table_sizes  # noqa: F401

pytestmark = pytest.mark.django_db

INFO = [
    {"name": "kite-2b", "organization": "Kite Labs", "license": "Apache-2.0", "url": "https://example.org/kite"},
    {"name": "lumen-8b", "organization": "Lumen", "license": "Non-commercial"},
]


def test_model_info_beside_question_jsonl_fills_in_the_registry(answer_dir):
    (answer_dir / "model_info.jsonl").write_text(jsonl(INFO))
    out = run(answer_dir)
    kite = ArenaModel.objects.get(name="kite-2b")
    assert (kite.organization, kite.license, kite.url) == ("Kite Labs", "Apache-2.0", "https://example.org/kite")
    lumen = ArenaModel.objects.get(name="lumen-8b")
    assert (lumen.organization, lumen.license, lumen.url) == ("Lumen", "Non-commercial", "")
    assert "model info" in out
    page = Client().get(reverse("leaderboard-model", args=["kite-2b"])).content.decode()
    assert 'href="https://example.org/kite"' in page and "Kite Labs" in page and "Apache-2.0" in page
    card = Client().get(reverse("api-model", args=["kite-2b"])).json()
    assert (card["organization"], card["license"], card["url"]) == (
        "Kite Labs",
        "Apache-2.0",
        "https://example.org/kite",
    )
    listed = Client().get("/api/v1/models/").json()["results"]
    assert [m["url"] for m in listed] == ["https://example.org/kite", ""]


def test_models_option_updates_models_already_registered(answer_dir, tmp_path):
    run(answer_dir)  # first without metadata
    assert ArenaModel.objects.get(name="kite-2b").organization == ""
    ArenaModelFactory(name="elsewhere-1b", organization="Old")
    info = tmp_path / "meta.jsonl"
    info.write_text(jsonl([*INFO, {"name": "elsewhere-1b", "organization": "New"}, {"name": "absent-model"}]))
    before = table_sizes()
    out = run(answer_dir, "--models", str(info))
    assert table_sizes() == before  # metadata only: nothing else added
    assert ArenaModel.objects.get(name="kite-2b").license == "Apache-2.0"
    assert ArenaModel.objects.get(name="elsewhere-1b").organization == "New"
    assert "3 models updated" in out and "absent-model" in out
    assert not ArenaModel.objects.filter(name="absent-model").exists()
    assert "0 models updated" in run(answer_dir, "--models", str(info))  # idempotent


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"organization": "x"}), "needs a name"),
        (json.dumps({"name": "model<b>"}), "name 'model<b>' contains '<'"),
        (json.dumps({"name": " kite-2b"}), "must not start or end with whitespace"),
        (json.dumps({"name": "third-9b", "licence": "MIT"}), "unknown key 'licence'"),
        (json.dumps({"name": "third-9b", "url": "javascript:alert(1)"}), "is not an http(s) URL"),
        (json.dumps({"name": "third-9b", "license": 3}), "license must be a string"),
        (json.dumps({"name": "third-9b", "organization": "o" * 201}), "at most 200 are allowed"),
        (json.dumps({"name": "lumen-8b"}), "'lumen-8b' is listed twice"),
    ],
)
def test_a_bad_model_info_line_names_file_and_line_and_writes_nothing(answer_dir, line, reason):
    path = answer_dir / "model_info.jsonl"
    path.write_text(jsonl(INFO) + line + "\n")
    with pytest.raises(CommandError) as failure:
        run(answer_dir)
    assert f"{path}:3: " in str(failure.value)
    assert reason in str(failure.value)
    assert table_sizes() == {"answer_sets": 0, "questions": 0, "answers": 0, "models": 0}


def test_a_missing_models_file_is_an_error(answer_dir, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(answer_dir, "--models", str(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize(
    ("model_id", "reason"),
    [("model<b>", "contains '<'"), ("ctl\x1bname", "control or invisible character (U+001B)"),
     (" gpt-4", "must not start or end with whitespace"), ("m" * 201, "at most 200 are allowed")],
)  # fmt: skip
def test_an_invalid_model_id_names_file_and_line_and_writes_nothing(answer_dir, model_id, reason):
    path = answer_dir / "model_answer" / "kite-2b.jsonl"
    rows = [answer_row("kite-2b", 81, ["a", "b"]), answer_row(model_id, 82, ["391"])]
    path.write_text(jsonl(rows))
    with pytest.raises(CommandError) as failure:
        run(answer_dir)
    assert f"{path}:2: model_id " in str(failure.value)
    assert reason in str(failure.value)
    assert table_sizes() == {"answer_sets": 0, "questions": 0, "answers": 0, "models": 0}


def test_registry_spellings_import_and_keep_their_names(answer_dir):
    for name in ("meta-llama/Llama-3.1-8B-Instruct", "llama3.1:8b"):
        # a "/" cannot be in a file name: the name comes from model_id
        (answer_dir / "model_answer" / f"{name.replace('/', '--')}.jsonl").write_text(
            jsonl([answer_row(name, 81, ["x", "y"]), answer_row(name, 82, ["391"])])
        )
    out = run(answer_dir)
    assert {"meta-llama/Llama-3.1-8B-Instruct", "llama3.1:8b"} <= set(ArenaModel.objects.values_list("name", flat=True))
    assert "4 new: kite-2b, llama3.1:8b, lumen-8b, meta-llama/Llama-3.1-8B-Instruct" in out  # case-insensitive order


def test_the_admin_filters_models_by_answer_set(answer_dir, tmp_path):
    run(answer_dir)
    other = tmp_path / "other_set"
    (other / "model_answer").mkdir(parents=True)
    (other / "question.jsonl").write_text(jsonl([{"question_id": 1, "turns": ["Hi?"]}]))
    (other / "model_answer" / "Zeta-1b.jsonl").write_text(jsonl([answer_row("Zeta-1b", 1, ["Hello"])]))
    (other / "model_answer" / "kite-2b.jsonl").write_text(jsonl([answer_row("kite-2b", 1, ["Hey"])]))
    run(other)
    ArenaModelFactory(name="live-only")
    client: Client = client_for(staff("olga", ADMIN))
    url = reverse("admin:arena_arenamodel_changelist")
    page = client.get(url).content.decode()
    assert "By answer set" in page and "other_set" in page and "mini_bench" in page

    def listed(params) -> list[str]:
        response = client.get(url, params)
        assert response.status_code == 200
        return [m.name for m in response.context["cl"].result_list]

    from arena.models import AnswerSet

    mini = AnswerSet.objects.get(name="mini_bench").pk
    second = AnswerSet.objects.get(name="other_set").pk
    assert listed({}) == ["kite-2b", "live-only", "lumen-8b", "Zeta-1b"]
    assert listed({"answer_set": mini}) == ["kite-2b", "lumen-8b"]
    assert listed({"answer_set": second}) == ["kite-2b", "Zeta-1b"]
