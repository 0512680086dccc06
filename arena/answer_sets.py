"""Load pre-generated answers in FastChat's llm_judge layout:

    DIR/question.jsonl              {"question_id", "category", "turns": [...]}
    DIR/model_answer/<model>.jsonl  {"question_id", "model_id", "choices": [{"turns": [...]}]}
    DIR/model_info.jsonl            optional: {"name", "organization", "license", "url"}

Idempotent: loading the same directory twice adds nothing (model_info.jsonl
updates the registry's metadata each time, so an edited file takes effect).
Model names follow arena.names, checked with FILE:LINE before anything is
written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from .models import Answer, AnswerSet, ArenaModel, Question
from .names import model_name_error

MODEL_INFO_FILE = "model_info.jsonl"
# model_info.jsonl keys → ArenaModel fields and their length limits.
MODEL_INFO_FIELDS = {"organization": 200, "license": 100, "url": 500, "display_name": 200}


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
    models_updated: list[str] = field(default_factory=list)
    info_file: str = ""
    info_unknown: list[str] = field(default_factory=list)  # model_info names neither loaded nor registered


def read_model_info(path: Path) -> dict[str, dict]:
    """``model_info.jsonl``: name → the metadata fields its line gives.

    Every line is checked before anything is written: a bad one raises
    ``AnswerSetError("FILE:LINE: reason")``. Unknown keys are errors too, so
    a misspelt "licence" is not silently dropped."""
    path = Path(path)
    if not path.is_file():
        raise AnswerSetError(f"{path}: no such file")
    url_ok = URLValidator(schemes=["http", "https"])
    info: dict[str, dict] = {}
    for lineno, obj in _read_jsonl(path):
        where = f"{path}:{lineno}"
        error = model_name_error(obj.get("name"), "name") if "name" in obj else "needs a name"
        if error:
            raise AnswerSetError(f"{where}: {error}")
        unknown = sorted(set(obj) - {"name", *MODEL_INFO_FIELDS})
        if unknown:
            raise AnswerSetError(
                f"{where}: unknown key {', '.join(map(repr, unknown))} (expected name, {', '.join(MODEL_INFO_FIELDS)})"
            )
        if obj["name"] in info:
            raise AnswerSetError(f"{where}: {obj['name']!r} is listed twice")
        fields = {}
        for key, limit in MODEL_INFO_FIELDS.items():
            if key not in obj:
                continue
            value = obj[key]
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise AnswerSetError(f"{where}: {key} must be a string, not {type(value).__name__}")
            value = value.strip()
            if len(value) > limit:
                raise AnswerSetError(f"{where}: {key} is {len(value)} characters long; at most {limit} are allowed")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                raise AnswerSetError(f"{where}: {key} contains a control character")
            if key == "url" and value:
                try:
                    url_ok(value)
                except ValidationError:
                    raise AnswerSetError(f"{where}: url {value[:80]!r} is not an http(s) URL") from None
            fields[key] = value
        info[obj["name"]] = fields
    return info


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
    models_file: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoadSummary:
    """Read and validate everything first, then write in one transaction.

    ``models_file`` (default: ``DIR/model_info.jsonl`` when present) sets the
    organization, license, url (and display_name) of the models it names,
    new or already registered."""
    directory = Path(directory)
    qfile = directory / "question.jsonl"
    adir = directory / "model_answer"
    if not qfile.is_file() or not adir.is_dir():
        raise AnswerSetError(f"{directory}: expected question.jsonl and model_answer/ (FastChat llm_judge layout)")
    if models_file is None and (directory / MODEL_INFO_FILE).is_file():
        models_file = directory / MODEL_INFO_FILE
    info = read_model_info(Path(models_file)) if models_file is not None else {}
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
            error = model_name_error(model, "model_id" if a.get("model_id") else "model name (from the file name)")
            if error:
                raise AnswerSetError(f"{path}:{lineno}: {error}")
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
    summary = LoadSummary(answer_set=name or directory.name, info_file=str(models_file or ""))
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
        model_names = sorted({m for m, _, _ in answers}, key=lambda n: (n.lower(), n))
        summary.models = model_names
        known = {m.name: m for m in ArenaModel.objects.filter(name__in=model_names)}
        for mname in model_names:
            if mname not in known:
                given = {**meta.get(mname, {}), **info.get(mname, {})}
                known[mname] = ArenaModel.objects.create(
                    name=mname,
                    display_name=given.get("display_name", ""),
                    organization=given.get("organization", ""),
                    license=given.get("license", ""),
                    url=given.get("url", ""),
                    weight=float(given.get("weight", 1.0)),
                    provider_kind=ArenaModel.Provider.ANSWER_SET,
                )
                summary.models_created.append(mname)
        if info:
            registered = {m.name: m for m in ArenaModel.objects.filter(name__in=list(info))}
            for mname, fields in info.items():
                model = registered.get(mname)
                if model is None:
                    summary.info_unknown.append(mname)
                    continue
                if any(getattr(model, k) != v for k, v in fields.items()):
                    ArenaModel.objects.filter(pk=model.pk).update(**fields)
                    summary.models_updated.append(mname)
        have = set(Answer.objects.filter(question__answer_set=aset).values_list("model__name", "question__external_id"))
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
