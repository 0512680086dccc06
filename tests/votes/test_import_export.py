"""import_battles and export_battles / GET /api/v1/votes/export/ on small
generated files: formats, dedupe keys, bad rows, exclusions, pseudonymous
export, and the round trip through an empty database."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.services import ROOT

STRENGTH = {"alpha": 1.0, "beta": 0.4, "gamma": 0.0, "delta": -0.8}
JUDGES = ("alice", "bob", "carol", "dave")
LABELS = ("model_a", "model_b", "tie", "tie (bothbad)")


def make_battles(n: int = 400, seed: int = 0, *, conversations: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = list(STRENGTH)
    out = []
    for i in range(n):
        a, b = (str(x) for x in rng.choice(names, 2, replace=False))
        u = rng.random()
        if u < 0.2:
            winner = "tie"
        elif u < 0.27:
            winner = "tie (bothbad)"
        else:
            p = 1 / (1 + np.exp(-(STRENGTH[a] - STRENGTH[b])))
            winner = "model_a" if rng.random() < p else "model_b"
        rec = {"question_id": f"q{i:05d}", "model_a": a, "model_b": b, "winner": winner,
               "judge": JUDGES[i % len(JUDGES)], "anony": True, "tstamp": 1_700_000_000.25 + 37 * i}  # fmt: skip
        if conversations:
            q1, q2 = f"What is {i} plus {i}?", "And why?"
            code = "Addition." if i % 3 else "```python\nprint(1 + 1)\n```"
            rec["conversation_a"] = chat(q1, f"## Sum\n**{2 * i}**", q2, "- because\n- maths")
            rec["conversation_b"] = chat(q1, f"It is {2 * i}.", q2, code)
        out.append(rec)
    return out


def chat(*turns: str) -> list[dict]:
    """A FastChat conversation: user and assistant turns alternating."""
    return [{"role": ("user", "assistant")[k % 2], "content": t} for k, t in enumerate(turns)]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def write_json(path, records) -> str:
    path.write_text(json.dumps(records, indent=2))
    return str(path)


def run_import(*paths, **opts):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_battles", *map(str, paths), stdout=out, stderr=err, no_progress=True, **opts)
    return out.getvalue(), err.getvalue()


def vote_total() -> int:
    from votes.models import Vote

    return Vote.objects.count()


def leaderboard():
    """(vote count, overall rows, every view of the published snapshot) after a fresh recompute."""
    from ratings.models import SnapshotView
    from ratings.services import recompute_publish

    snap = recompute_publish(force=True)
    views = {
        (v.key, v.style_control): (v.vote_count, v.counts_fingerprint, named(v.rows), v.style_coefficients,
                                   bytes(v.pairs))
        for v in SnapshotView.objects.filter(snapshot=snap)
    }  # fmt: skip
    return snap.vote_count, named(snap.rows), views


def named(rows: list[dict]) -> list[dict]:
    """Stored rows with the model's name in place of its id (ids differ after a re-import)."""
    from ratings.selectors import registry, row_model_id

    reg = registry()
    return [{"model": reg.models[row_model_id(r, reg)]["model"], **{k: v for k, v in r.items() if k != "model_id"}}
            for r in rows]  # fmt: skip


# --------------------------------------------------------------------------
# formats


def test_winner_labels_match_the_ones_rate_battles_reads():
    from ratings.battle_files import LABELS as RATE_LABELS
    from votes.importers import LABELS as IMPORT_LABELS

    assert set(IMPORT_LABELS) == set(RATE_LABELS)
    score = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
    assert all(score[IMPORT_LABELS[k]] == RATE_LABELS[k] for k in IMPORT_LABELS)


def test_clean_battle_json_array_imports_every_battle(db, tmp_path):
    from votes.models import Vote

    records = make_battles(120)
    out, _ = run_import(write_json(tmp_path / "clean_battle.json", records))
    assert "120 added" in out
    assert vote_total() == 120
    want = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
    got = list(Vote.objects.order_by("id").values_list("model_a__name", "model_b__name", "winner", "source"))
    assert got == [(r["model_a"], r["model_b"], want[r["winner"]], "import") for r in records]


def test_the_same_battles_as_json_jsonl_or_csv_are_the_same_votes(db, tmp_path):
    records = make_battles(60)
    run_import(write_json(tmp_path / "a.json", records))
    out, _ = run_import(write_jsonl(tmp_path / "b.jsonl", records))
    assert "0 added, 60 already present" in out
    # A CSV with the same columns (all strings) names the same battles.
    path = tmp_path / "c.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["question_id", "model_a", "model_b", "winner", "judge", "anony", "tstamp"])
        w.writeheader()
        w.writerows({**r, "anony": "true", "tstamp": repr(r["tstamp"])} for r in records)
    out, _ = run_import(path)
    assert "0 added, 60 already present" in out
    assert vote_total() == 60


def test_reimporting_a_file_adds_nothing(db, tmp_path):
    path = write_jsonl(tmp_path / "battles.jsonl", make_battles(200, conversations=True))
    run_import(path)
    before = vote_total()
    out, _ = run_import(path)
    assert "0 added, 200 already present" in out
    assert vote_total() == before == 200


def test_repeated_identical_csv_rows_stay_distinct_votes(db, tmp_path):
    """A plain model_a,model_b,winner file has no ids: identical lines are
    different votes (the 33k Chatbot Arena CSV is mostly such repeats)."""
    path = tmp_path / "plain.csv"
    rows = ["alpha,beta,model_a"] * 3 + ["beta,alpha,tie", "alpha,beta,model_a"]
    path.write_text("model_a,model_b,winner\n" + "\n".join(rows) + "\n")
    run_import(path)
    assert vote_total() == 5
    out, _ = run_import(path)
    assert "0 added" in out and vote_total() == 5
    # a second file of id-less rows is the same rows unless it has its own namespace
    other = tmp_path / "other.csv"
    other.write_text("model_a,model_b,winner\nalpha,beta,model_a\n")
    run_import(other)
    assert vote_total() == 5
    run_import(other, namespace="survey-2")
    assert vote_total() == 6


def test_an_unnamed_index_column_is_not_an_identity(db, tmp_path):
    """pandas writes a row-position column with an empty header; two files of
    different battles both start at 0, so that column must not be the key."""
    first, second = tmp_path / "one.csv", tmp_path / "two.csv"
    first.write_text(",model_a,model_b,winner\n0,alpha,beta,model_a\n1,gamma,delta,tie\n")
    second.write_text(",model_a,model_b,winner\n0,beta,gamma,model_b\n")
    run_import(first, second)
    assert vote_total() == 3


def test_arena_human_preference_csv_with_prompts_and_responses(db, tmp_path):
    from votes.models import Vote

    path = tmp_path / "ahp.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "model_a", "model_b", "prompt", "response_a", "response_b",
                    "winner_model_a", "winner_model_b", "winner_tie"])  # fmt: skip
        answers_a = ["```python\ndef f(): pass\n```", "int f();"]
        w.writerow([101, "alpha", "beta", json.dumps(["Write a python function", "Now in C"]),
                    json.dumps(answers_a), json.dumps(["No.", "No."]), 1, 0, 0])  # fmt: skip
        w.writerow([102, "gamma", "delta", json.dumps(["Bonjour, comment ça va ?"]), json.dumps(["Bien"]),
                    json.dumps(["**Très** bien\n- merci"]), 0, 0, 1])  # fmt: skip
    run_import(path)
    code, french = Vote.objects.order_by("id")
    assert code.winner == "a" and code.is_code and code.turns == 2 and code.language == "en"
    assert french.winner == "tie" and french.language == "fr"
    assert french.style == [1, 0, 0, 0, 8, 0, 1, 1]  # tokens (words and marks), headers, list items, bold; a then b
    out, _ = run_import(path)
    assert "0 added" in out


def test_mt_bench_judgments_store_features_of_the_first_user_turn(db, tmp_path):
    from arena.models import Voter
    from votes.models import Vote

    records = make_battles(8, conversations=True)
    for r in records:  # MT-bench shape: no anony, no tstamp, an int question id, turn, expert judges
        del r["anony"], r["tstamp"]
        r["question_id"], r["turn"], r["judge"] = 81, 1 + (records.index(r) % 2), f"expert_{records.index(r) % 3}"
    run_import(write_jsonl(tmp_path / "mt.jsonl", records))
    vote = Vote.objects.order_by("id").first()
    assert vote.turns == 2  # user turns in the conversation
    assert vote.prompt_tokens == 6  # "What is 0 plus 0?" → What, is, 0, plus, 0, ?
    assert vote.style[:4] == [12, 1, 2, 1]  # side a: "## Sum\n**0**" + "- because\n- maths" (marks are tokens)
    assert vote.language == "en"
    assert set(Voter.objects.values_list("key", flat=True)) == {"import:expert_0", "import:expert_1", "import:expert_2"}
    assert vote_total() == 8


def test_judges_become_voters_and_missing_judges_share_one(db, tmp_path):
    from arena.models import Voter
    from votes.models import Vote

    records = make_battles(10)
    for r in records[:4]:
        del r["judge"]
    run_import(write_jsonl(tmp_path / "j.jsonl", records))
    keys = set(Voter.objects.values_list("key", flat=True))
    assert keys == {"import:unknown"} | {f"import:{r['judge']}" for r in records[4:]}
    assert Vote.objects.filter(voter__key="import:unknown").count() == 4


def test_tstamp_becomes_the_vote_time(db, tmp_path):
    from votes.models import Vote

    records = make_battles(3)
    run_import(write_jsonl(tmp_path / "t.jsonl", records))
    got = list(Vote.objects.order_by("id").values_list("created_at", flat=True))
    assert got == [datetime.fromtimestamp(r["tstamp"], UTC) for r in records]


# --------------------------------------------------------------------------
# models, exclusions


def test_unknown_models_are_created_deprecated(db, tmp_path):
    from arena.models import ArenaModel

    ArenaModel.objects.create(name="alpha", status="active")
    path = write_jsonl(tmp_path / "m.jsonl", make_battles(40))
    out, _ = run_import(path)
    assert "models created: 3 (deprecated)" in out
    status = dict(ArenaModel.objects.values_list("name", "status"))
    assert status == {"alpha": "active", "beta": "deprecated", "gamma": "deprecated", "delta": "deprecated"}


def test_status_option_creates_active_models(db, tmp_path):
    from arena.models import ArenaModel

    run_import(write_jsonl(tmp_path / "m.jsonl", make_battles(40)), status="active")
    assert set(ArenaModel.objects.values_list("status", flat=True)) == {"active"}


def test_named_and_self_battles_are_stored_but_not_counted(db, tmp_path):
    from ratings.selectors import counted_votes
    from votes.models import Vote

    records = make_battles(50)
    records[3]["anony"] = False
    records[4]["model_b"] = records[4]["model_a"]
    records[5]["anony"] = "false"
    out, _ = run_import(write_jsonl(tmp_path / "x.jsonl", records))
    assert "2 named" in out and "1 self_battle" in out
    assert vote_total() == 50  # stored, never dropped
    reasons = dict(Vote.objects.filter(excluded=True).values_list("id", "exclusion_reason"))
    assert sorted(reasons.values()) == ["named", "named", "self_battle"]
    assert counted_votes().count() == 47  # the leaderboard counts anonymous, informative battles only


# --------------------------------------------------------------------------
# bad rows


def bad_jsonl(tmp_path):
    lines = [json.dumps(r) for r in make_battles(9)]
    lines[2] = '{"model_a": "alpha", "model_b": "beta", "winner": "model_c"}'  # line 3
    lines[6] = '{"model_a": "alpha", "model_b": '  # line 7
    lines.insert(4, "")  # blank line 5 is skipped, and shifts the rest: bad ones on 3 and 8
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_rows_are_reported_by_line_and_nothing_is_written(db, tmp_path):
    from arena.models import ArenaModel, Voter

    good = write_jsonl(tmp_path / "good.jsonl", make_battles(30, seed=3))
    with pytest.raises(CommandError) as err:
        run_import(good, bad_jsonl(tmp_path), batch_size=2)  # earlier batches were written, then rolled back
    message = str(err.value)
    assert "2 bad row(s); nothing was imported" in message
    assert "bad.jsonl:3: unknown winner 'model_c'" in message
    assert "bad.jsonl:8: invalid JSON" in message
    assert vote_total() == 0 and ArenaModel.objects.count() == 0 and Voter.objects.count() == 0


def test_bad_rows_in_a_json_array_and_a_csv_carry_their_line_numbers(db, tmp_path):
    records = make_battles(5)
    records[2]["model_b"] = ""
    path = tmp_path / "arr.json"
    path.write_text(json.dumps(records, indent=2))  # "[" on line 1, then 9 lines per record
    with pytest.raises(CommandError, match=r"arr\.json:20: model_b must be a non-empty string"):
        run_import(path)
    csv_path = tmp_path / "bad.csv"
    # line 3 holds a quoted name spanning two lines, so the bad row is on line 5
    csv_path.write_text('model_a,model_b,winner\nalpha,beta,model_a\n"gamma\nwith newline",delta,tie\n'
                        "alpha,beta,oops\n")  # fmt: skip
    with pytest.raises(CommandError, match=r"bad\.csv:5: unknown winner 'oops'"):
        run_import(csv_path)
    assert vote_total() == 0


def test_skip_bad_rows_imports_the_rest_and_lists_what_it_skipped(db, tmp_path):
    out, err = run_import(bad_jsonl(tmp_path), skip_bad_rows=True)
    assert vote_total() == 7
    assert "bad.jsonl:3:" in err and "bad.jsonl:8:" in err
    assert "bad rows skipped: 2" in out


def test_a_file_that_is_not_battles_is_refused(db, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(CommandError, match="not a battle file"):
        run_import(path)
    with pytest.raises(CommandError, match="no such file"):
        run_import(tmp_path / "missing.jsonl")


def test_progress_bar_goes_to_stderr(db, tmp_path):
    from votes.importers import import_files

    stream = io.StringIO()
    import_files([write_jsonl(tmp_path / "p.jsonl", make_battles(50))], progress=True, progress_stream=stream)
    assert "100%" in stream.getvalue() and "50 rows" in stream.getvalue()


# --------------------------------------------------------------------------
# export


@pytest.fixture
def imported(db, tmp_path):
    records = make_battles(300, conversations=True)
    records[7]["anony"] = False
    records[8]["model_b"] = records[8]["model_a"]
    run_import(write_jsonl(tmp_path / "source.jsonl", records))
    return records


def export_text(**opts) -> str:
    out = io.StringIO()
    call_command("export_battles", stdout=out, **opts)
    return out.getvalue()


def export_to(path, **opts) -> str:
    call_command("export_battles", output=str(path), **opts)
    return str(path)


def test_export_api_is_staff_only(imported, client, django_user_model):
    url = "/api/v1/votes/export/"
    assert client.get(url).status_code in (401, 403)
    user = django_user_model.objects.create_user("voter", password="pw")
    client.force_login(user)
    assert client.get(url).status_code == 403
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 298  # named and self-battle left out
    assert client.get(url + "?include_excluded=maybe").status_code == 400


def test_export_is_pseudonymous(imported, client, django_user_model):
    from arena.models import Voter
    from votes.exporters import judge_pseudonym

    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    body = b"".join(client.get("/api/v1/votes/export/?include_excluded=true").streaming_content).decode()
    records = [json.loads(line) for line in body.splitlines()]
    keys = list(Voter.objects.values_list("key", flat=True))
    for key in keys:
        assert key not in body
    for judge in JUDGES:
        assert f'"{judge}"' not in body and f"import:{judge}" not in body
    judges = {r["judge"] for r in records}
    assert judges == {judge_pseudonym(k) for k in keys}
    assert len(judges) == len(JUDGES)  # stable: one pseudonym per voter
    assert all(j.startswith("u_") and len(j) == 18 for j in judges)


def test_export_leaves_out_excluded_votes_unless_asked(imported):
    counted = [json.loads(line) for line in export_text().splitlines()]
    everything = [json.loads(line) for line in export_text(include_excluded=True).splitlines()]
    assert len(counted) == 298 and len(everything) == 300
    assert all(r["anony"] is True and "excluded" not in r for r in counted)
    extra = [r for r in everything if r.get("excluded")]
    assert sorted(r["exclusion_reason"] for r in extra) == ["named", "self_battle"]
    assert next(r for r in extra if r["exclusion_reason"] == "named")["anony"] is False
    first = counted[0]
    assert {"model_a", "model_b", "winner", "judge", "anony", "tstamp", "language", "conv_metadata"} <= set(first)


def test_export_to_a_file_then_reimport_here_adds_nothing_twice(imported, tmp_path):
    path = export_to(tmp_path / "exported.jsonl")
    before = vote_total()
    run_import(path)
    after_first = vote_total()
    out, _ = run_import(path)
    assert "0 added" in out and vote_total() == after_first
    assert after_first - before == 298  # documented: an export re-imported into its own database is new votes


# --------------------------------------------------------------------------
# round trips


def wipe_database():
    """What an empty database looks like to the importer (test-only deletes)."""
    from arena.models import ArenaModel, Voter
    from ratings.models import Snapshot
    from votes.models import Vote, VoteExclusionEvent, VoterFlag

    VoteExclusionEvent.objects.all().delete()
    VoterFlag.objects.all().delete()
    Vote.objects.all().delete()
    Voter.objects.all().delete()
    ArenaModel.objects.all().delete()
    Snapshot.objects.all().delete()


def test_import_export_import_into_an_empty_database_gives_the_same_leaderboard(imported, tmp_path):
    from votes.models import STYLE_FIELDS, Vote

    count, rows, views = leaderboard()
    assert {"overall", "coding", "multi_turn", "lang:en"} <= {key for key, _ in views}
    columns = (
        "model_a__name",
        "model_b__name",
        "winner",
        "language",
        "is_code",
        "prompt_tokens",
        "turns",
        *STYLE_FIELDS,
    )
    features = sorted(Vote.objects.filter(excluded=False).values_list(*columns))
    path = export_to(tmp_path / "exported.jsonl", include_excluded=True)

    wipe_database()
    assert vote_total() == 0
    run_import(path)

    assert leaderboard() == (count, rows, views)  # every view, every digit of every row
    assert sorted(Vote.objects.filter(excluded=False).values_list(*columns)) == features
    assert vote_total() == 300
    assert sorted(Vote.objects.filter(excluded=True).values_list("exclusion_reason", flat=True)) == [
        "named", "self_battle"]  # fmt: skip


def test_rate_battles_on_the_export_gives_the_database_ratings(imported, tmp_path):
    count, rows, _ = leaderboard()
    path = export_to(tmp_path / "exported.jsonl")
    env = dict(os.environ, DATABASE_URL="postgres://nobody@127.0.0.1:1/none")  # no database needed
    proc = subprocess.run(
        [sys.executable, "manage.py", "rate_battles", path], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["battles_used"] == count
    from_file = {m["model"]: (m["rating"], m["lower"], m["upper"], m["battles"]) for m in result["models"]}
    from_db = {r["model"]: (r["rating"], r["lower"], r["upper"], r["battles"]) for r in rows}
    assert from_file.keys() == from_db.keys()
    for name, (rating, lower, upper, battles) in from_db.items():
        assert from_file[name][3] == battles
        # Same engine, same counts; only the model order (summation order) differs.
        assert from_file[name][:3] == pytest.approx((rating, lower, upper), abs=1e-3)


@pytest.mark.parametrize("batch_size", [7, 20_000])
def test_a_file_overlapping_stored_votes_adds_only_the_new_ones(db, tmp_path, batch_size):
    records = make_battles(150)
    for i, r in enumerate(records[100:]):
        r["judge"] = f"newcomer-{i % 3}"  # voters that appear only after the overlap
    first = write_jsonl(tmp_path / "first.jsonl", records[:100])
    second = write_jsonl(tmp_path / "second.jsonl", records[40:])
    run_import(first, batch_size=batch_size)
    out, _ = run_import(second, batch_size=batch_size)
    assert "50 added, 60 already present" in out
    assert vote_total() == 150
    out, _ = run_import(first, second, first, batch_size=batch_size)  # the same rows several times in one run
    assert "0 added" in out and vote_total() == 150


def test_the_same_file_twice_in_one_run_is_imported_once(db, tmp_path):
    path = write_jsonl(tmp_path / "twice.jsonl", make_battles(30))
    out, _ = run_import(path, path)
    assert "30 added, 30 already present" in out
    assert vote_total() == 30
