"""One battle file, two commands, one answer (issue #13).

Hypothesis writes battle files with the edges the formats allow (JSON Lines,
JSON arrays compact or pretty, CSV with a winner column or one-hot columns; BOM,
CRLF, blank lines, quoted multi-line cells, duplicate rows, anony spelled every
way, names with surrounding whitespace, winner labels with spaces, unknown
labels, bad tstamps, NUL bytes, self-battles, rows the file marks excluded,
nested multi-turn conversations). For each file:

- ``rate_battles FILE`` and ``import_battles FILE`` + ``export_battles`` +
  ``rate_battles`` give the same battles, per-model counts and ratings;
- both count the same skips (bad rows, named, self-battles, excluded);
- and both agree with what the generator meant each row to be (so they can't
  just agree with each other on a wrong reading).

Runs against the database the suite uses (PostgreSQL in CI).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
from collections import Counter

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratings import cli

NAMES = ["alpha", "org/beta-7b", "gamma:8b", "模型-δ"]
SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5, "both_bad": 0.5, "bothbad": 0.5}
# anony as files spell it, and what it means (None: the row is bad)
ANONY = [
    ("absent", True), (None, True), (True, True), (False, False), ("true", True), ("True", True), ("FALSE", False),
    (1, True), (0, False), ("1", True), ("0", False), ("yes", True), ("no", False), ("maybe", None), (2, None),
]  # fmt: skip
_counter = itertools.count()


@st.composite
def rows(draw):
    """One row as the generator means it: its fields, what it should be, and
    what it should be if its winner were spelled right (CSV one-hot has no spelling)."""
    bad = None
    a, b = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    if draw(st.integers(0, 14)) == 0:
        a = " " + a  # surrounding whitespace: refused by arena.names, in both commands
        bad = "name"
    label = draw(st.sampled_from([*SCORE, " model_a ", "tie\t", "draw", "Model_A"]))
    anony, anonymous = draw(st.sampled_from(ANONY))
    if anonymous is None:
        bad = bad or "anony"
    rec = {"model_a": a, "model_b": b, "winner": label}
    if anony != "absent":
        rec["anony"] = anony
    tstamp = draw(st.sampled_from(["absent", 1_700_000_000.5, "1700000123.25", -5, "soon", None]))
    if tstamp != "absent":
        rec["tstamp"] = tstamp
        if tstamp in (-5, "soon"):
            bad = bad or "tstamp"
    judge = draw(st.sampled_from(["absent", "j1", " j2 ", "", "nul\x00judge"]))
    if judge != "absent":
        rec["judge"] = judge
        if "\x00" in judge:
            bad = bad or "nul"
    excluded = draw(st.integers(0, 9)) == 0
    if excluded:
        rec["excluded"] = True
        rec["exclusion_reason"] = "anomalous_voter"
    if draw(st.booleans()):
        turns = draw(st.integers(1, 3))
        rec["conversation_a"] = [m for t in range(turns) for m in ({"role": "user", "content": f"q{t}\n,\"x\""},
                                 {"role": "assistant", "content": f"## A{t}\n- **yes**"})]  # fmt: skip
        rec["conversation_b"] = [m for t in range(turns) for m in ({"role": "user", "content": f"q{t}"},
                                 {"role": "assistant", "content": "no"})]  # fmt: skip
        rec["turn"] = turns
    if bad:
        base = "bad"
    elif a == b:
        base = "self_battle"
    elif not anonymous:
        base = "named"
    elif excluded:
        base = "excluded"
    else:
        base = "counted"
    return rec, ("bad" if label.strip() not in SCORE else base), base


@st.composite
def battle_files(draw):
    fmt = draw(st.sampled_from(["jsonl", "json", "json-pretty", "csv", "csv-onehot"]))
    drawn = draw(st.lists(rows(), min_size=1, max_size=25))
    base_kind = {id(r): base for r, _, base in drawn}
    items = [(r, k) for r, k, _ in drawn]
    if items and draw(st.booleans()):  # exact duplicates: distinct battles in both commands
        items += draw(st.lists(st.sampled_from(items), max_size=4))
    if fmt.startswith("json"):
        # a raw NUL can't be in a JSON array at all; there it travels escaped (\u0000), a bad judge too
        records = [r for r, _ in items]
        text = json.dumps(records, ensure_ascii=False, indent=2 if fmt == "json-pretty" else None)
    elif fmt == "jsonl":
        lines = [json.dumps(r, ensure_ascii=False) for r, _ in items]
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), "   ")
        text = "\n".join(lines) + "\n"
    else:
        items = [(r, k) for r, k in items if "conversation_a" not in r]  # CSV cells hold text, not lists
        if not items:
            items = [({"model_a": "alpha", "model_b": "gamma:8b", "winner": "tie"}, "counted")]
        one_hot = fmt == "csv-onehot"
        cols = ["", "model_a", "model_b"] + (
            ["winner_model_a", "winner_model_b", "winner_tie"] if one_hot else ["winner"]
        )
        cols += ["anony", "tstamp", "judge", "prompt", "excluded", "exclusion_reason"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        fixed = []
        for i, (r, kind) in enumerate(items):
            label = r["winner"].strip()
            if one_hot:
                if label not in SCORE:
                    flags = ["1", "1", "0"]  # not exactly one: bad, as an unknown label is
                    kind = "bad"
                else:  # one-hot has no spelling to get wrong: only the row's other fields decide
                    code = {"model_a": 0, "model_b": 1}.get(label, 2)
                    flags = ["1" if k == code else "0" for k in range(3)]
                    kind = base_kind.get(id(r), kind)
                winner = flags
            else:
                winner = [r["winner"]]
            anony = r.get("anony", "")
            anony = "" if anony is None else str(anony)
            ts = r.get("tstamp", "")
            ts = "" if ts is None else str(ts)
            w.writerow([i, r["model_a"], r["model_b"], *winner, anony, ts, r.get("judge", ""),
                        "line one\nline two, with a comma", "true" if r.get("excluded") else "",
                        r.get("exclusion_reason", "")])  # fmt: skip
            fixed.append((r, kind))
        items = fixed
        text = buf.getvalue()
        if draw(st.booleans()):
            text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return fmt, text, [k for _, k in items], [r for r, _ in items]


def rate(path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([str(path), "--skip-bad-rows", "--ci", "none", "--format", "json"]) == 0
    return json.loads(out.getvalue())


def board(result: dict) -> dict:
    return {m["model"]: (m["battles"], m["wins"], m["losses"], m["ties"]) for m in result["models"]}


def expected_board(records, kinds) -> dict:
    tally: dict[str, list[int]] = {}
    for r, kind in zip(records, kinds, strict=True):
        if kind != "counted":
            continue
        s = SCORE.get(r["winner"].strip())
        for name, won in ((r["model_a"], s), (r["model_b"], None if s is None else 1 - s)):
            t = tally.setdefault(name, [0, 0, 0, 0])
            t[0] += 1
            t[1 if won == 1 else 2 if won == 0 else 3] += 1
    return {k: tuple(v) for k, v in tally.items()}


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(case=battle_files())
def test_rate_battles_and_import_export_rate_agree_on_every_edge(case, tmp_path):
    from votes.importers import import_files
    from votes.models import Vote

    fmt, text, kinds, records = case
    path = (
        tmp_path
        / f"battles-{next(_counter)}.{'csv' if fmt.startswith('csv') else 'jsonl' if fmt == 'jsonl' else 'json'}"
    )
    path.write_bytes(text.encode())
    want = Counter(kinds)

    direct = rate(path)
    skipped = direct["battles_skipped"]
    assert skipped["bad_row"] == want["bad"]
    assert skipped["named"] == want["named"]
    assert skipped["excluded"] == want["excluded"]
    assert skipped["self_battle"] == want["self_battle"]
    assert direct["battles_used"] == want["counted"]
    assert board(direct) == expected_board(records, kinds)

    Vote.objects.all().delete()
    stats = import_files([path], skip_bad_rows=True, progress=False)
    assert stats.bad_count == want["bad"]
    assert stats.rows == len(kinds) - want["bad"]
    assert stats.added == stats.rows  # duplicates are distinct votes
    assert {k: v for k, v in stats.skipped.items() if v} == {
        k: want[k] for k in ("self_battle", "named", "excluded") if want[k]
    }
    assert Vote.objects.filter(excluded=False).count() == want["counted"]

    exported = tmp_path / f"export-{next(_counter)}.jsonl"
    call_command("export_battles", output=str(exported), stdout=io.StringIO(), stderr=io.StringIO())
    if not want["counted"]:  # nothing to export; an empty file is no battle file to either command
        assert exported.read_text() == "" and direct["models"] == []
        return
    again = rate(exported)
    assert again["battles_used"] == direct["battles_used"]
    assert again["battles_skipped"] == {"self_battle": 0, "named": 0, "bad_row": 0, "excluded": 0}
    assert board(again) == board(direct)
    ratings_direct = {m["model"]: m["rating"] for m in direct["models"]}
    ratings_again = {m["model"]: m["rating"] for m in again["models"]}
    assert ratings_again.keys() == ratings_direct.keys()
    for name, value in ratings_direct.items():
        assert ratings_again[name] == pytest.approx(value, abs=1e-3)
