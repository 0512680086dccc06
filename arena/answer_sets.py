"""Load pre-generated answers in FastChat's llm_judge layout:

    DIR/question.jsonl              {"question_id", "category", "turns": [...]}
    DIR/model_answer/<model>.jsonl  {"question_id", "model_id", "choices": [{"turns": [...]}]}

Idempotent: loading the same directory twice adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from .models import Answer, AnswerSet, ArenaModel, Question


class AnswerSetError(Exception):
    pass


@dataclass
class LoadSummary:
    answer_set: str
    questions_created: int = 0
    answers_created: int = 0
    answers_skipped: int = 0
    models_created: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnswerSetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise AnswerSetError(f"{path}:{lineno}: expected a JSON object")
            if _holds_nul(obj):
                raise AnswerSetError(
                    f"{path}:{lineno}: contains a NUL character (\\u0000), which the database cannot store"
                )
            rows.append((lineno, obj))
    return rows


def _holds_nul(value) -> bool:
    """Whether any string (key or value) in a parsed JSON value holds U+0000:
    PostgreSQL's text and jsonb refuse it, and the import must fail on the
    line, before anything is written, not in the middle of the transaction."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_answer_set(
    directory: Path,
    *,
    name: str | None = None,
    model_meta: dict[str, dict] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadSummary:
    """Read and validate everything first, then write in one transaction."""
    directory = Path(directory)
    qfile = directory / "question.jsonl"
    adir = directory / "model_answer"
    if not qfile.is_file() or not adir.is_dir():
        raise AnswerSetError(f"{directory}: expected question.jsonl and model_answer/ (FastChat llm_judge layout)")
    questions: dict[str, dict] = {}
    for lineno, q in _read_jsonl(qfile):
        if "question_id" not in q or not isinstance(q.get("turns"), list) or not q["turns"]:
            raise AnswerSetError(f"{qfile}:{lineno}: needs question_id and a non-empty turns list")
        questions[str(q["question_id"])] = q
    answer_files = sorted(adir.glob("*.jsonl"))
    if not answer_files:
        raise AnswerSetError(f"{adir}: no <model>.jsonl files")
    answers: list[tuple[str, str, list[str]]] = []
    for path in answer_files:
        for lineno, a in _read_jsonl(path):
            model = a.get("model_id") or path.stem
            qid = str(a.get("question_id"))
            try:
                turns = a["choices"][0]["turns"]
            except (KeyError, IndexError, TypeError) as exc:
                raise AnswerSetError(f"{path}:{lineno}: needs choices[0].turns") from exc
            if qid not in questions:
                raise AnswerSetError(f"{path}:{lineno}: unknown question_id {qid}")
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise AnswerSetError(f"{path}:{lineno}: turns must be a list of strings")
            answers.append((model, qid, turns))
    summary = LoadSummary(answer_set=name or directory.name)
    meta = model_meta or {}
    with transaction.atomic():
        aset, _ = AnswerSet.objects.get_or_create(name=summary.answer_set, defaults={"source": str(directory)})
        existing_q = {q.external_id: q for q in aset.questions.all()}
        new_q = [
            Question(answer_set=aset, external_id=qid, category=str(q.get("category", "")), turns=q["turns"])
            for qid, q in questions.items()
            if qid not in existing_q
        ]
        Question.objects.bulk_create(new_q)
        summary.questions_created = len(new_q)
        qmap = {q.external_id: q for q in aset.questions.all()}
        model_names = sorted({m for m, _, _ in answers})
        summary.models = model_names
        known = {m.name: m for m in ArenaModel.objects.filter(name__in=model_names)}
        for mname in model_names:
            if mname not in known:
                info = meta.get(mname, {})
                known[mname] = ArenaModel.objects.create(
                    name=mname,
                    display_name=info.get("display_name", ""),
                    organization=info.get("organization", ""),
                    license=info.get("license", ""),
                    weight=float(info.get("weight", 1.0)),
                    provider_kind=ArenaModel.Provider.ANSWER_SET,
                )
                summary.models_created.append(mname)
        have = set(
            Answer.objects.filter(question__answer_set=aset).values_list("model__name", "question__external_id")
        )
        batch = []
        for i, (mname, qid, turns) in enumerate(answers, 1):
            if (mname, qid) in have:
                summary.answers_skipped += 1
            else:
                batch.append(Answer(question=qmap[qid], model=known[mname], turns=turns))
                have.add((mname, qid))
            if progress and (i % 200 == 0 or i == len(answers)):
                progress(i, len(answers))
        Answer.objects.bulk_create(batch, batch_size=500)
        summary.answers_created = len(batch)
    return summary
