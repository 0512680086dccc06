#!/usr/bin/env python3
"""Development check (not a test): do we reproduce published arena tables?

    python bench/check_published.py [--l2 0.5] [--votes ../shared/data/votes] [-v]

Runs ``manage.py rate_battles FILE --l2 0.5 --ci none`` on each published
battle file and compares with the published leaderboard CSV:

- GenAI-Arena 2024-02-20: clean_battle.json vs leaderboard.csv, column
  "Arena Elo rating (anony)" (default: anonymous battles only) and
  "Arena Elo rating (full)" (``--include-named``).
- MTEB-Arena, every <date>/ folder and latest/: retrieval and STS tables
  (clean_results_<task>.json or clean_battle_<task>.json vs
  <task>_leaderboard.csv, column "Arena Elo rating (anony)"; the "(full)"
  column is identical there: every MTEB battle is anonymous).
  Clustering tables are reported separately: their battles contain a
  self-battle, which FastChat's dense-matrix fit mishandled, shifting every
  published rating; they are not a target.

Anchoring: the published numbers come from FastChat's legacy
``compute_elo_mle_with_tie`` (scikit-learn LogisticRegression, L2 C=1 on
duplicated rows, 400·coef + 1000, no anchor unless a "llama-13b" is present,
which none of these tables has). With an L2 penalty the optimum has mean
rating 1000 in every connected part of the comparison graph, and so does ours
with --l2, so the primary figure compares raw numbers, no shift. The
"aligned" column also shows max |diff| after subtracting each side's mean
over the common models, for reference.

Target: max |diff| <= 3 rating points on every GenAI/retrieval/STS table.
Exit status 1 if a target table misses (or a run fails).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VOTES = REPO.parent / "shared" / "data" / "votes"
TASKS = ("retrieval", "sts", "clustering")


@dataclass
class Table:
    name: str
    battles: Path
    leaderboard: Path
    column: str
    extra: list[str] = field(default_factory=list)
    target: bool = True


def discover(votes: Path) -> list[Table]:
    tables: list[Table] = []
    g = votes / "genai-arena-20240220"
    if (g / "clean_battle.json").exists() and (g / "leaderboard.csv").exists():
        tables.append(
            Table(
                "genai-arena-20240220 anony", g / "clean_battle.json", g / "leaderboard.csv", "Arena Elo rating (anony)"
            )
        )
        tables.append(
            Table(
                "genai-arena-20240220 full",
                g / "clean_battle.json",
                g / "leaderboard.csv",
                "Arena Elo rating (full)",
                ["--include-named"],
            )
        )
    mteb = votes / "mteb-arena"
    for d in sorted(p for p in mteb.iterdir() if p.is_dir()) if mteb.exists() else []:
        for task in TASKS:
            lb = d / f"{task}_leaderboard.csv"
            battle = next(
                (f for f in (d / f"clean_results_{task}.json", d / f"clean_battle_{task}.json") if f.exists()), None
            )
            if battle and lb.exists():
                tables.append(
                    Table(
                        f"mteb-arena/{d.name} {task}",
                        battle,
                        lb,
                        "Arena Elo rating (anony)",
                        target=task != "clustering",
                    )
                )
    return tables


def published(t: Table) -> dict[str, float]:
    out = {}
    with open(t.leaderboard, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            v = (row.get(t.column) or "").strip()
            try:
                out[row.get("key") or row["Model"]] = float(v)
            except ValueError:
                continue
    return out


def ours(t: Table, python: str, l2: float) -> dict:
    cmd = [python, "manage.py", "rate_battles", str(t.battles), "--l2", str(l2), "--ci", "none", *t.extra]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout)


def compare(pub: dict[str, float], res: dict) -> dict:
    mine = {m["model"]: m["rating"] for m in res["models"]}
    common = sorted(set(pub) & set(mine))
    diffs = {k: mine[k] - pub[k] for k in common}
    worst = max(common, key=lambda k: abs(diffs[k])) if common else None
    shift = sum(diffs.values()) / len(common) if common else 0.0
    return {
        "n_pub": len(pub),
        "n_ours": len(mine),
        "n_common": len(common),
        "only_pub": sorted(set(pub) - set(mine)),
        "only_ours": sorted(set(mine) - set(pub)),
        "max_raw": max((abs(v) for v in diffs.values()), default=float("nan")),
        "max_aligned": max((abs(v - shift) for v in diffs.values()), default=float("nan")),
        "mean_shift": shift,
        "worst": worst,
        "worst_diff": diffs.get(worst, float("nan")),
        "self": res["battles_skipped"].get("self_battle", 0),
        "used": res["battles_used"],
        "warnings": res["warnings"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--l2", type=float, default=0.5)
    ap.add_argument("--votes", type=Path, default=DEFAULT_VOTES)
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--tolerance", type=float, default=3.0)
    ap.add_argument("-v", "--verbose", action="store_true", help="print warnings and model-set differences")
    args = ap.parse_args(argv)

    tables = discover(args.votes)
    if not tables:
        print(f"no published tables found under {args.votes}")
        return 1
    print(
        f"rate_battles --l2 {args.l2} --ci none vs published ratings (rating points; raw = no shift, "
        f"aligned = after matching means)"
    )
    header = f"{'table':38}{'battles':>8}{'self':>5}{'models':>9}{'raw':>8}{'aligned':>9}{'shift':>8}  worst model"
    bad = 0
    for section, want in (
        ("targets (GenAI-Arena, MTEB retrieval & STS)", True),
        ("not a target: MTEB clustering (self-battle shift in the published tables)", False),
    ):
        print(f"\n## {section}\n{header}")
        for t in (t for t in tables if t.target == want):
            try:
                c = compare(published(t), ours(t, args.python, args.l2))
            except Exception as exc:  # noqa: BLE001 - report and go on
                print(f"{t.name:38}  ERROR {exc}")
                bad += want
                continue
            ok = c["max_raw"] <= args.tolerance and not c["only_pub"]
            mark = "" if not want else ("  ok" if ok else "  MISS")
            bad += want and not ok
            models = f"{c['n_common']}/{c['n_pub']}"
            print(
                f"{t.name:38}{c['used']:>8}{c['self']:>5}{models:>9}{c['max_raw']:>8.2f}{c['max_aligned']:>9.2f}"
                f"{c['mean_shift']:>+8.2f}  {c['worst']} ({c['worst_diff']:+.2f}){mark}"
            )
            if args.verbose:
                for w in c["warnings"]:
                    print(f"    warning: {w}")
                if c["only_pub"]:
                    print(f"    only in published table: {c['only_pub']}")
                if c["only_ours"]:
                    print(f"    only in ours: {c['only_ours']}")
    n_target = sum(t.target for t in tables)
    print(f"\n{n_target - bad}/{n_target} target tables within {args.tolerance:g} points")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
