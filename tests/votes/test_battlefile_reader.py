"""votes.battlefile, the one reader under rate_battles and import_battles:
no Django, streaming JSON arrays with exact lines, the CSV fast path equal to
the careful one, repeats counted without a dict per row, and issue #13's file."""

from __future__ import annotations

import ast
import io
import json
import os
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.services import ROOT
from votes.battlefile import BadRow, Battle, BattleFile, BattleFileError, read, reader
from votes.import_keys import Ordinals

ISSUE_13 = (
    '{"model_a": "x", "model_b": "y", "winner": "model_a", "anony": null}\n'
    '{"model_a": "x", "model_b": "y", "winner": "model_b", "anony": "True"}\n'
    '{"model_a": "x", "model_b": "y", "winner": "tie", "anony": 1}\n'
    '{"model_a": " x", "model_b": "y", "winner": "model_a", "anony": true}\n'
)


def test_reader_imports_no_django_and_runs_with_django_unconfigured():
    # The modules themselves import nothing from Django …
    for rel in ("votes/battlefile/reader.py", "votes/battlefile/__init__.py", "votes/import_keys.py",
                "ratings/battle_files.py", "ratings/cli.py"):  # fmt: skip
        tree = ast.parse((ROOT / rel).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.split(".")[0] == "django"], rel
    # … and they read and rate with Django never set up (arena/__init__'s Celery
    # wiring may load Django modules, but no settings, apps or database).
    code = (
        "import sys, json, pathlib, tempfile\n"
        "from ratings import cli\n"
        "from votes.battlefile import read\n"
        "p = pathlib.Path(tempfile.mkdtemp()) / 'b.jsonl'\n"
        'p.write_text(json.dumps({"model_a": "a", "model_b": "b", "winner": "tie"}) + "\\n")\n'
        "assert [r.winner for r in read(p)] == ['tie']\n"
        "assert cli.main([str(p), '--ci', 'none']) == 0\n"
        "import django.conf, django.apps\n"
        "assert not django.conf.settings.configured and not django.apps.apps.ready\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_issue_13_file_reads_the_same_in_both_commands(db, tmp_path):
    from votes.importers import import_files

    path = tmp_path / "issue13.jsonl"
    path.write_text(ISSUE_13)
    items = list(read(path))
    assert [type(i).__name__ for i in items] == ["Battle", "Battle", "Battle", "BadRow"]
    assert all(i.skip == "" and i.model_a == "x" for i in items[:3])  # null, "True" and 1 all mean anonymous
    assert "must not start or end with whitespace" in str(items[3]) and str(items[3]).endswith(
        "issue13.jsonl:4: model_a ' x' must not start or end with whitespace"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "rate_battles", str(path), "--skip-bad-rows", "--ci", "none"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    rated = json.loads(out.stdout)
    assert rated["battles_used"] == 3 and rated["battles_skipped"]["bad_row"] == 1
    assert sorted(m["model"] for m in rated["models"]) == ["x", "y"]
    stats = import_files([path], skip_bad_rows=True, progress=False)
    assert (stats.rows, stats.added, stats.bad_count, stats.excluded) == (3, 3, 1, {})
    strict = subprocess.run(
        [sys.executable, "manage.py", "rate_battles", str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert strict.returncode == 1 and "issue13.jsonl:4:" in strict.stderr
    with pytest.raises(CommandError, match=r"issue13\.jsonl:4: model_a ' x'"):
        call_command("import_battles", str(path), stdout=io.StringIO(), stderr=io.StringIO(), no_progress=True)


def _records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    labels = ["model_a", "model_b", "tie", "tie (bothbad)"]
    return [
        {"model_a": f"m{rng.randrange(5)}", "model_b": f"n{rng.randrange(5)}", "winner": rng.choice(labels),
         "tstamp": 1.7e9 + i, "conversation_a": [{"role": "assistant", "content": "x" * rng.randrange(3000)}]}
        for i in range(n)
    ]  # fmt: skip


def test_json_array_streams_in_chunks_with_exact_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 4096)  # elements cross many chunk boundaries
    recs = _records(300)
    recs[250]["winner"] = "draw"
    path = tmp_path / "big.json"
    text = json.dumps(recs, indent=2)
    path.write_text(text)
    items = list(read(path))
    assert len(items) == 300
    assert [(r.model_a, r.model_b) for r in items if type(r) is Battle] == [
        (r["model_a"], r["model_b"]) for i, r in enumerate(recs) if i != 250
    ]
    bad = [r for r in items if type(r) is BadRow]
    starts = [k + 1 for k, line in enumerate(text.splitlines()) if line == "  {"]
    assert [b.line for b in bad] == [starts[250]] and "unknown winner 'draw'" in bad[0].reason
    assert [r.line for r in items if type(r) is Battle][:3] == starts[:3]


def test_json_array_with_a_broken_element_stops_with_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 1024)
    recs = _records(40)
    text = json.dumps(recs, indent=1)
    cut = text.index('"model_a"', len(text) // 2)
    broken = text[:cut] + '"model_a": tru, ' + text[cut:]
    path = tmp_path / "broken.json"
    path.write_text(broken)
    items = list(read(path))
    assert type(items[-1]) is BadRow and items[-1].fatal
    assert items[-1].line == broken[:cut].count("\n") + 1 and "invalid JSON" in items[-1].reason
    unclosed = tmp_path / "unclosed.json"
    unclosed.write_text(text[: text.rindex("}") + 1])
    last = list(read(unclosed))[-1]
    assert type(last) is BadRow and "not closed" in last.reason


def test_counted_csv_equals_row_by_row(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 256)  # many blocks; quotes appear only late in the file
    rng = random.Random(1)
    lines = ["model_a,model_b,winner"]
    for i in range(3000):
        a, b = f"m{rng.randrange(4)}", f"m{rng.randrange(4)}"
        w = rng.choice(["model_a", "model_b", "tie", " tie ", "tie (bothbad)", "draw"])
        lines.append(f"{a},{b},{w}" if i < 2500 else f'"{a}",{b},"{w}"')
        if i % 700 == 0:
            lines.append("")
        if i % 900 == 0:
            lines.append(f" {a},{b},tie")
    path = tmp_path / "plain.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())

    def tally(items):
        good, bad = Counter(), []
        for it, n in items:
            if type(it) is BadRow:
                bad.append((it.line, it.reason))
            else:
                good[(it.model_a, it.model_b, it.winner, it.skip)] += n
        return good, sorted(bad)

    one_by_one = tally((item, 1) for item in BattleFile(path))
    counted = tally(BattleFile(path).counted())
    assert one_by_one == counted
    assert len(one_by_one[1]) > 10 and all(lines[n - 1].split(",")[2].strip('"') == "draw" or lines[n - 1].startswith(" ")
                                           for n, _ in one_by_one[1])  # fmt: skip


def test_ordinals_count_earlier_equal_digests_like_a_counter():
    rng = np.random.default_rng(3)
    stream = rng.integers(0, 500, 20_000).astype(np.uint64)  # many repeats
    tracker = Ordinals()
    got = np.concatenate([tracker(stream[i : i + 777]) for i in range(0, len(stream), 777)])
    seen: Counter = Counter()
    want = []
    for d in stream.tolist():
        want.append(seen[d])
        seen[d] += 1
    assert got.tolist() == want
    assert len(tracker.runs) <= 6 and tracker.nbytes == 8 * len(stream)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("model_a,model_b,winner\na,b,tie\na,b\x00,tie\n", "NUL byte"),
        ('{"model_a": "a", "model_b": "b", "winner": "tie"}\n{"model_a": "a\x00", "model_b": "b"}\n', "NUL byte"),
        (
            '{"model_a": "a", "model_b": "b", "winner": "tie"}\n'
            + '{"model_a": "a", "model_b": "b", "winner": "tie", "anony": "perhaps"}\n',
            "anony must be true or false",
        ),
        ("model_a,model_b,winner_model_a,winner_model_b,winner_tie\na,b,1,0,0\na,b,1,1,0\n", "exactly one of"),
        ("\ufeffmodel_a,model_b,winner\r\na,b,tie\r\na,b,model_a,extra\r\n", "expected 3 columns"),
    ],
)
def test_bad_rows_name_their_line(tmp_path, content, reason):
    path = tmp_path / "f.txt"
    path.write_bytes(content.encode())
    items = list(read(path))
    assert type(items[0]) is Battle and items[0].model_a == "a"
    assert (
        type(items[1]) is BadRow
        and items[1].line == 2 + (content.startswith(("model", "\ufeff")))
        and reason in items[1].reason
    )


def test_not_a_battle_file_is_refused_whole(tmp_path):
    path = tmp_path / "baseball.csv"
    path.write_text(",home.team,away.team\n1,a,b\n")
    with pytest.raises(BattleFileError, match="not a battle file"):
        BattleFile(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(BattleFileError, match="not a battle file"):
        BattleFile(empty)
