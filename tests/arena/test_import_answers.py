"""``manage.py import_answers DIR``: FastChat llm_judge layout, idempotent, all or nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from arena.models import Answer, AnswerSet, ArenaModel, Question

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"question_id": 81, "category": "writing", "turns": ["Write a haiku about rain.", "Now make it rhyme."]},
    {"question_id": 82, "category": "math", "turns": ["What is 17 * 23?"]},
    {"question_id": 83, "category": "coding", "turns": ["Reverse a list in Python."]},
]
ANSWERS = {
    "kite-2b": {81: ["Rain taps the window", "Rain, again"], 82: ["391"], 83: ["xs[::-1]"]},
    "lumen-8b": {81: ["Grey clouds soften", "Rhymes"], 82: ["17 * 23 = 391"]},
}


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def answer_row(model: str, qid: int, turns: list[str]) -> dict:
    return {
        "question_id": qid,
        "answer_id": f"{model}-{qid}",
        "model_id": model,
        "choices": [{"index": 0, "turns": turns}],
        "tstamp": 1700000000.0,
    }


@pytest.fixture
def answer_dir(tmp_path) -> Path:
    root = tmp_path / "mini_bench"
    (root / "model_answer").mkdir(parents=True)
    (root / "question.jsonl").write_text(jsonl(QUESTIONS))
    for model, answers in ANSWERS.items():
        (root / "model_answer" / f"{model}.jsonl").write_text(
            jsonl(answer_row(model, qid, turns) for qid, turns in answers.items())
        )
    return root


def run(directory: Path, *args) -> str:
    out = io.StringIO()
    call_command("import_answers", str(directory), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def table_sizes() -> dict[str, int]:
    return {
        "answer_sets": AnswerSet.objects.count(),
        "questions": Question.objects.count(),
        "answers": Answer.objects.count(),
        "models": ArenaModel.objects.count(),
    }


def test_import_loads_questions_answers_and_models(answer_dir):
    output = run(answer_dir)

    aset = AnswerSet.objects.get(name="mini_bench")
    assert table_sizes() == {"answer_sets": 1, "questions": 3, "answers": 5, "models": 2}
    assert sorted(ArenaModel.objects.values_list("name", flat=True)) == ["kite-2b", "lumen-8b"]
    q81 = aset.questions.get(external_id="81")
    assert q81.category == "writing" and q81.turns == QUESTIONS[0]["turns"]
    assert Answer.objects.get(question=q81, model__name="kite-2b").turns == ["Rain taps the window", "Rain, again"]
    assert "3 questions added, 5 answers added" in output


def test_import_twice_adds_nothing(answer_dir):
    run(answer_dir)
    before = table_sizes()
    answers_before = sorted(Answer.objects.values_list("id", "question_id", "model_id"))

    output = run(answer_dir)

    assert table_sizes() == before
    assert sorted(Answer.objects.values_list("id", "question_id", "model_id")) == answers_before
    assert "0 questions added, 0 answers added, 5 already present" in output


def test_import_adds_only_what_is_new(answer_dir):
    run(answer_dir)
    extra = answer_dir / "model_answer" / "lumen-8b.jsonl"
    extra.write_text(extra.read_text() + jsonl([answer_row("lumen-8b", 83, ["list(reversed(xs))"])]))

    run(answer_dir)

    assert table_sizes() == {"answer_sets": 1, "questions": 3, "answers": 6, "models": 2}


def test_import_keeps_an_existing_models_settings(answer_dir):
    ArenaModel.objects.create(name="kite-2b", organization="Kite Org", weight=3.0)
    run(answer_dir)
    assert ArenaModel.objects.get(name="kite-2b").weight == 3.0
    assert ArenaModel.objects.get(name="kite-2b").organization == "Kite Org"


@pytest.mark.parametrize(
    "file,line_no,bad_line,reason",
    [
        ("model_answer/lumen-8b.jsonl", 2, '{"question_id": 82, "choices": [', "not valid JSON"),
        ("model_answer/kite-2b.jsonl", 3, '{"question_id": 83, "model_id": "kite-2b"}', "choices[0].turns"),
        ("model_answer/kite-2b.jsonl", 1, '{"question_id": 999, "choices": [{"turns": ["x"]}]}', "unknown question_id"),
        ("model_answer/kite-2b.jsonl", 2, '{"question_id": 82, "choices": [{"turns": [1, 2]}]}', "list of strings"),
        ("model_answer/kite-2b.jsonl", 2, '["not", "an", "object"]', "JSON object"),
        ("question.jsonl", 2, '{"question_id": 82, "turns": []}', "turns"),
        ("question.jsonl", 3, '{"turns": ["no id"]}', "question_id"),
    ],
    ids=[
        "truncated-json",
        "no-choices",
        "unknown-question",
        "non-string-turns",
        "not-an-object",
        "empty-turns",
        "no-question-id",
    ],
)
def test_malformed_line_is_reported_with_file_and_line_and_nothing_is_written(
    answer_dir, file, line_no, bad_line, reason
):
    path = answer_dir / file
    lines = path.read_text().splitlines()
    lines[line_no - 1] = bad_line
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(CommandError) as err:
        run(answer_dir)

    message = str(err.value)
    assert f"{path}:{line_no}:" in message
    assert reason in message
    assert table_sizes() == {"answer_sets": 0, "questions": 0, "answers": 0, "models": 0}


def test_error_in_a_later_import_leaves_the_earlier_one_untouched(answer_dir):
    run(answer_dir)
    before = table_sizes()
    (answer_dir / "model_answer" / "nova-1b.jsonl").write_text(jsonl([answer_row("nova-1b", 81, ["fine"])]) + "{oops\n")

    with pytest.raises(CommandError, match=r"nova-1b\.jsonl:2:"):
        run(answer_dir)

    assert table_sizes() == before
    assert not ArenaModel.objects.filter(name="nova-1b").exists()


def test_directory_without_the_llm_judge_layout_is_refused(tmp_path):
    (tmp_path / "question.jsonl").write_text(jsonl(QUESTIONS))
    with pytest.raises(CommandError, match="question.jsonl and model_answer/"):
        run(tmp_path)
    assert table_sizes()["answer_sets"] == 0


def test_imported_set_is_playable(answer_dir, client):
    run(answer_dir)
    response = client.post("/api/v1/battles/", data={}, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    # Only 81 and 82 were answered by both models.
    assert body["prompt"] in {QUESTIONS[0]["turns"][0], QUESTIONS[1]["turns"][0]}
