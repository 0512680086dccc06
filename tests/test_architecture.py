"""The dependency direction (docs/ARCHITECTURE.md) is checked by import-linter
(.importlinter); these tests run it, and prove it catches an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.services import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), str(cwd / ".importlinter"), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def contracts(config: Path) -> int:
    return config.read_text().count("[importlinter:contract:")


def test_the_dependency_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert contracts(ROOT / ".importlinter") == 5
    assert "5 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path):
    """A copy of the apps with one import against the direction in each of
    arena, votes, the wiring's protection, the numeric core and the
    battle-file reader."""
    ignore = shutil.ignore_patterns("static", "templates", "demo", "__pycache__", "*.pyc")
    for app in ("arena", "votes", "ratings"):
        shutil.copytree(ROOT / app, tmp_path / app, ignore=ignore)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    violations = {
        "arena/sampling.py": "from ratings import selectors",
        "votes/features.py": "import ratings.models",
        "ratings/plots.py": "from arena.project import urls",
        "ratings/davidson.py": "import django",
        "votes/battlefile/reader.py": "import django.db",
    }
    for path, line in violations.items():
        with open(tmp_path / path, "a") as f:
            f.write(f"\n{line}  # against the direction\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 5 broken" in result.stdout, result.stdout
    for fragment in (
        "arena.sampling -> ratings.selectors",
        "votes.features -> ratings.models",
        "ratings.plots -> arena.project.urls",
        "ratings.davidson -> django",
        "votes.battlefile.reader -> django",
    ):
        assert fragment in result.stdout, result.stdout


def test_the_newest_snapshot_has_one_reader():
    """ratings.selectors.newest_snapshot() is the one way to read "the newest
    snapshot"; no module orders snapshots by time to take the first."""
    import re

    found = []
    for app in ("arena", "votes", "ratings"):
        for path in (ROOT / app).rglob("*.py"):
            text = path.read_text()
            for m in re.finditer(r"Snapshot\.objects\.order_by\(\"-created_at\"[^\n]*\.first\(\)", text):
                found.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert not found, "\n".join(found)
