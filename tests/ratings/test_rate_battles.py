"""`manage.py rate_battles`: a real process on files this test writes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.services import ROOT

MODELS = ["alpha", "beta", "gamma", "delta"]


def make_battles(n=600, seed=0):
    rng = np.random.default_rng(seed)
    strength = {"alpha": 1.0, "beta": 0.4, "gamma": 0.0, "delta": -0.8}
    out = []
    for i in range(n):
        a, b = rng.choice(MODELS, 2, replace=False)
        p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
        u = rng.random()
        winner = "tie" if u < 0.2 else ("tie (bothbad)" if u < 0.25 else ("model_a" if rng.random() < p else "model_b"))
        out.append({"model_a": str(a), "model_b": str(b), "winner": winner, "anony": True, "tstamp": 1.7e9 + i})
    return out


def run(*args, env_extra=None, check=True):
    env = dict(os.environ)
    # No database anywhere: the command must not need one.
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none"
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "manage.py", "rate_battles", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def ratings_of(out: str) -> dict[str, float]:
    return {m["model"]: m["rating"] for m in json.loads(out)["models"]}


@pytest.fixture
def battles():
    return make_battles()


@pytest.fixture
def json_file(tmp_path, battles):
    p = tmp_path / "clean_battle.json"
    p.write_text(json.dumps(battles, indent=2))
    return p


def write_csv(path, battles):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model_a", "model_b", "winner"])
        for r in battles:
            w.writerow([r["model_a"], r["model_b"], r["winner"]])
    return path


def test_output_has_the_documented_shape(json_file):
    out = json.loads(run(json_file).stdout)
    assert set(out) == {
        "method",
        "ci",
        "battles_used",
        "battles_skipped",
        "models",
        "style_coefficients",
        "warnings",
        "timings",
        "intervals",
        "ties",
        "style_control",
        "anchor",
    }
    assert out["intervals"] == "marginal" and out["ties"] == "half"
    assert out["style_control"] is False and out["anchor"] is None
    assert out["method"] == "bt" and out["ci"] == "sandwich" and out["battles_used"] == 600
    assert set(out["battles_skipped"]) >= {"self_battle", "named"}
    assert set(out["timings"]) == {"read", "aggregate", "fit", "intervals"}
    row = out["models"][0]
    assert set(row) == {"model", "rating", "lower", "upper", "rank", "battles", "wins", "losses", "ties"}
    assert [m["model"] for m in out["models"]] == ["alpha", "beta", "gamma", "delta"]
    assert sum(m["battles"] for m in out["models"]) == 2 * 600
    assert all(m["lower"] < m["rating"] < m["upper"] for m in out["models"])


def test_json_jsonl_and_csv_give_the_same_ratings(tmp_path, battles, json_file):
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in battles) + "\n")
    plain = write_csv(tmp_path / "b.csv", battles)
    hp = tmp_path / "hp.csv"
    with hp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "model_a", "model_b", "prompt", "winner_model_a", "winner_model_b", "winner_tie"])
        for i, r in enumerate(battles):
            flags = {"model_a": (1, 0, 0), "model_b": (0, 1, 0)}.get(r["winner"], (0, 0, 1))
            w.writerow([i, r["model_a"], r["model_b"], 'a prompt, with "quotes"\nand a newline', *flags])
    reference = ratings_of(run(json_file).stdout)
    for f in (jsonl, plain, hp):
        got = ratings_of(run(f).stdout)
        assert got == pytest.approx(reference, abs=1e-6), f.name


def test_several_files_are_rated_together(tmp_path, battles):
    one = write_csv(tmp_path / "one.csv", battles[:300])
    two = write_csv(tmp_path / "two.csv", battles[300:])
    both = write_csv(tmp_path / "both.csv", battles)
    assert ratings_of(run(one, two).stdout) == pytest.approx(ratings_of(run(both).stdout), abs=1e-6)


def test_named_battles_and_self_battles_are_skipped_and_counted(tmp_path, battles):
    extra = [
        {"model_a": "alpha", "model_b": "beta", "winner": "model_b", "anony": False},
        {"model_a": "gamma", "model_b": "gamma", "winner": "tie", "anony": True},
    ]
    p = tmp_path / "mixed.json"
    p.write_text(json.dumps(battles + extra))
    out = json.loads(run(p).stdout)
    assert out["battles_skipped"]["named"] == 1
    assert out["battles_skipped"]["self_battle"] == 1
    assert out["battles_used"] == 600
    with_named = json.loads(run(p, "--include-named").stdout)
    assert with_named["battles_used"] == 601 and with_named["battles_skipped"]["named"] == 0


def test_malformed_row_fails_with_its_line_number(tmp_path, battles):
    p = write_csv(tmp_path / "bad.csv", battles[:10])
    lines = p.read_text().splitlines()
    lines.insert(5, "alpha,beta,maybe")
    p.write_text("\n".join(lines) + "\n")
    proc = run(p, check=False)
    assert proc.returncode != 0
    assert f"{p}:6" in proc.stderr and "maybe" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    skipped = json.loads(run(p, "--skip-bad-rows").stdout)
    assert skipped["battles_skipped"]["bad_row"] == 1 and skipped["battles_used"] == 10


def test_malformed_json_record_reports_its_line(tmp_path, battles):
    p = tmp_path / "bad.json"
    recs = battles[:3] + [{"model_a": "alpha", "winner": "model_a"}] + battles[3:5]
    p.write_text(json.dumps(recs, indent=2))
    proc = run(p, check=False)
    assert proc.returncode != 0
    line = p.read_text().splitlines().index("  {", 0) + 1
    assert "model_a and model_b" in proc.stderr
    # the fourth record starts on line 1 + 3 * 7 + 1 of the pretty-printed file
    bad_line = [i for i, text in enumerate(p.read_text().splitlines(), 1) if text == "  {"][3]
    assert f"{p}:{bad_line}:" in proc.stderr and line < bad_line
    out = json.loads(run(p, "--skip-bad-rows").stdout)
    assert out["battles_skipped"]["bad_row"] == 1


@pytest.mark.parametrize(
    "content",
    ["just some text\n", "", "a,b,c\n1,2,3\n", "\x00\x01binary"],
    ids=["text", "empty", "csv-without-columns", "binary"],
)
def test_a_file_that_is_not_battles_gets_a_one_line_error(tmp_path, content):
    p = tmp_path / "nope.txt"
    p.write_text(content)
    proc = run(p, check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_file_is_a_one_line_error(tmp_path):
    proc = run(tmp_path / "missing.json", check=False)
    assert proc.returncode != 0 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr


def test_bootstrap_is_reproducible_with_a_seed(json_file):
    one = json.loads(run(json_file, "--ci", "bootstrap", "--rounds", "50", "--seed", "3").stdout)
    two = json.loads(run(json_file, "--ci", "bootstrap", "--rounds", "50", "--seed", "3").stdout)
    assert one["models"] == two["models"] and one["ci"] == "bootstrap"


def test_anchor_pins_a_model_and_l2_shrinks_the_spread(json_file):
    anchored = ratings_of(run(json_file, "--anchor", "gamma=1114").stdout)
    assert anchored["gamma"] == pytest.approx(1114, abs=1e-3)
    free = ratings_of(run(json_file).stdout)
    shrunk = ratings_of(run(json_file, "--l2", "5").stdout)
    assert max(shrunk.values()) - min(shrunk.values()) < max(free.values()) - min(free.values())
    proc = run(json_file, "--anchor", "nobody=1000", check=False)
    assert proc.returncode != 0 and "nobody" in proc.stderr


def test_an_anchor_only_shifts_so_widths_agree_across_interval_methods(json_file):
    """Issue #13: sandwich widths were spreads around the mean, bootstrap widths
    relative to the anchor ([37.6, 37.5, …] against [0, 57.5, …]). Now every
    method computes intervals centred and the anchor only shifts them."""

    def widths(*extra):
        out = json.loads(run(json_file, *extra).stdout)
        return {m["model"]: m["upper"] - m["lower"] for m in out["models"]}, out

    boot = ["--ci", "bootstrap", "--rounds", "200", "--seed", "1"]
    sandwich, _ = widths()
    anchored_sandwich, out = widths("--anchor", "gamma=1114")
    anchored_boot, _ = widths(*boot, "--anchor", "gamma=1114")
    free_boot, _ = widths(*boot)
    assert out["anchor"] == {"model": "gamma", "rating": 1114.0}
    assert anchored_sandwich == pytest.approx(sandwich, abs=2e-4)
    assert anchored_boot == pytest.approx(free_boot, abs=2e-4)
    assert anchored_boot["gamma"] > 0.5 * sandwich["gamma"]
    for model, width in sandwich.items():
        assert anchored_boot[model] == pytest.approx(width, rel=0.3), model


def test_elo_method_is_order_dependent_and_reported(json_file):
    out = json.loads(run(json_file, "--method", "elo").stdout)
    assert out["method"] == "elo" and out["ci"] == "none"
    ranked = [m["model"] for m in out["models"]]
    assert ranked[0] == "alpha" and ranked[-1] == "delta"


def test_reweight_changes_weights_not_the_order(json_file):
    out = json.loads(run(json_file, "--reweight").stdout)
    assert [m["model"] for m in out["models"]] == ["alpha", "beta", "gamma", "delta"]


def test_style_control_reports_coefficients_from_conversations(tmp_path, battles):
    rng = np.random.default_rng(4)
    recs = []
    for r in battles:
        long_a = rng.random() < 0.5
        text_a = "word " * (300 if long_a else 20) + "\n# Head\n- item\n**bold**"
        text_b = "word " * (20 if long_a else 300)
        winner = r["winner"]
        if winner.startswith("tie") and rng.random() < 0.7:
            winner = "model_a" if long_a else "model_b"  # voters like long answers
        recs.append(
            {
                **r,
                "winner": winner,
                "conversation_a": [{"role": "user", "content": "q"}, {"role": "assistant", "content": text_a}],
                "conversation_b": [{"role": "user", "content": "q"}, {"role": "assistant", "content": text_b}],
            }
        )
    p = tmp_path / "styled.json"
    p.write_text(json.dumps(recs))
    out = json.loads(run(p, "--style-control").stdout)
    coef = out["style_coefficients"]
    assert set(coef) == {"tokens", "headers", "list_items", "bold"}
    assert coef["tokens"] > 0.1
    plain = tmp_path / "plain.csv"
    write_csv(plain, battles)
    proc = run(plain, "--style-control", check=False)
    assert proc.returncode != 0 and "needs the responses" in proc.stderr


def test_style_control_takes_every_interval_method_and_reweighting(tmp_path, battles):
    recs = [
        {**r, "conversation_a": [{"role": "assistant", "content": "word " * (5 + i % 40)}],
         "conversation_b": [{"role": "assistant", "content": "word " * (5 + (7 * i) % 40) + "\n- item"}]}
        for i, r in enumerate(battles)
    ]  # fmt: skip
    p = tmp_path / "styled.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    for extra in (
        ["--ci", "none"],
        ["--ci", "bootstrap", "--rounds", "30", "--seed", "2", "--reweight"],
        ["--simultaneous"],
        ["--ci", "bootstrap", "--rounds", "30", "--seed", "2", "--simultaneous"],
    ):
        out = json.loads(run(p, "--style-control", *extra).stdout)
        assert out["style_control"] is True, extra
        assert out["ci"] == (extra[1] if extra[0] == "--ci" else "sandwich"), extra
        assert out["intervals"] == ("simultaneous" if "--simultaneous" in extra else "marginal"), extra
        for m in out["models"]:
            assert m["lower"] <= m["rating"] <= m["upper"], (extra, m)
            assert (m["upper"] - m["lower"] == 0) == (extra[:2] == ["--ci", "none"]), (extra, m)


def test_table_and_csv_formats(json_file):
    table = run(json_file, "--format", "table").stdout
    assert table.splitlines()[0].split()[:3] == ["rank", "model", "rating"]
    assert "alpha" in table.splitlines()[1]
    rows = list(csv.DictReader(io.StringIO(run(json_file, "--format", "csv").stdout)))
    assert rows[0]["model"] == "alpha" and float(rows[0]["rating"]) > float(rows[-1]["rating"])


def test_django_call_command_gives_the_same_answer(json_file, capsys):
    from django.core.management import call_command

    call_command("rate_battles", str(json_file))
    via_django = ratings_of(capsys.readouterr().out)
    assert via_django == pytest.approx(ratings_of(run(json_file).stdout), abs=1e-9)


def test_degenerate_data_gives_finite_numbers_and_warnings(tmp_path):
    recs = [
        {"model_a": "winner", "model_b": "loser", "winner": "model_a"},
        {"model_a": "winner", "model_b": "mid", "winner": "model_a"},
        {"model_a": "mid", "model_b": "loser", "winner": "tie"},
        {"model_a": "island", "model_b": "atoll", "winner": "tie"},
    ]
    p = tmp_path / "edge.json"
    p.write_text(json.dumps(recs))
    out = json.loads(run(p).stdout)
    for m in out["models"]:
        assert all(np.isfinite([m["rating"], m["lower"], m["upper"]]))
    text = " ".join(out["warnings"])
    assert "winner" in text and "island" in text
