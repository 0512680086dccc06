"""Battle files into index arrays for the rating core (``rate_battles``). No Django.

The files are read by ``votes.battlefile``, the reader ``import_battles`` uses
too, so both commands see the same battles, skips and warnings (formats and the
rule for every edge: docs/VOTES.md). This module only maps model names to
indices and keeps what the engine needs: for a Bradley–Terry fit, counts per
(model_a, model_b, outcome), so memory does not grow with the number of rows;
for Elo (order matters) and style control (per-battle features), one compact
machine-typed entry per battle.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from votes.battlefile import EXCLUDED, NAMED, SCORE, BadRow, BattleFile, BattleFileError, row_style
from votes.battlefile import LABELS as _CODES

# Winner label → score of model_a.
LABELS = {label: SCORE[code] for label, code in _CODES.items()}

__all__ = ["LABELS", "BattleFileError", "Battles", "read_battles"]


@dataclass
class Battles:
    names: list[str] = field(default_factory=list)
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    y: np.ndarray | None = None
    count: np.ndarray | None = None
    tstamp: np.ndarray | None = None
    style_a: np.ndarray | None = None
    style_b: np.ndarray | None = None
    named: int = 0
    excluded: int = 0
    bad_rows: int = 0
    has_style: bool = True
    warnings: list[str] = field(default_factory=list)


def read_battles(
    paths: list[str | Path],
    *,
    include_named: bool = False,
    skip_bad_rows: bool = False,
    ordered: bool = False,
    want_style: bool = False,
) -> Battles:
    """Read one or more battle files into one model index.

    ``ordered`` keeps one entry per battle in tstamp (else file) order, for
    Elo; ``want_style`` keeps per-battle style counts. Otherwise battles come
    back counted per (a, b, outcome). Self-battles are kept (the engine counts
    and drops them); named (anony false) battles are skipped unless
    ``include_named``, battles the file marks excluded always.
    """
    out = Battles(has_style=want_style)
    index: dict[str, int] = {}
    names = out.names
    per_battle = ordered or want_style
    counts: dict[tuple[int, int, str], int] = {}
    a, b, y, ts = array("q"), array("q"), array("d"), array("d")
    style_a, style_b = array("d"), array("d")
    order = 0
    for p in paths:
        bf = BattleFile(p)
        for item, n in ((i, 1) for i in bf) if per_battle else bf.counted():
            if type(item) is BadRow:
                if not skip_bad_rows:
                    raise BattleFileError(f"{item} (use --skip-bad-rows to skip such rows)")
                out.bad_rows += 1
                continue
            skip = item.skip
            if skip == NAMED and not include_named:
                out.named += n
                continue
            if skip == EXCLUDED:
                out.excluded += n
                continue
            ia = index.get(item.model_a)
            if ia is None:
                ia = index[item.model_a] = len(names)
                names.append(item.model_a)
            ib = index.get(item.model_b)
            if ib is None:
                ib = index[item.model_b] = len(names)
                names.append(item.model_b)
            if not per_battle:
                key = (ia, ib, item.winner)
                counts[key] = counts.get(key, 0) + n
                continue
            order += 1
            a.append(ia)
            b.append(ib)
            y.append(item.score)
            ts.append(item.tstamp if item.tstamp is not None else float(order))
            if out.has_style:
                st = row_style(item.get)
                if st is None:
                    out.has_style = False
                else:
                    style_a.extend(st[0])
                    style_b.extend(st[1])
        out.warnings.extend(bf.warnings)
    if per_battle:
        out.a = np.frombuffer(a, dtype=np.int64).copy() if a else np.zeros(0, np.int64)
        out.b = np.frombuffer(b, dtype=np.int64).copy() if b else np.zeros(0, np.int64)
        out.y = np.frombuffer(y, dtype=np.float64).copy() if y else np.zeros(0)
        out.tstamp = np.frombuffer(ts, dtype=np.float64).copy() if ts else np.zeros(0)
        out.count = np.ones(len(out.a))
    else:
        keys = list(counts)
        out.a = np.array([k[0] for k in keys], dtype=np.int64)
        out.b = np.array([k[1] for k in keys], dtype=np.int64)
        out.y = np.array([SCORE[k[2]] for k in keys], dtype=np.float64)
        out.count = np.array(list(counts.values()), dtype=np.float64)
        out.tstamp = np.zeros(len(keys))
    if out.has_style and want_style:
        out.style_a = np.asarray(style_a, dtype=np.float64).reshape(-1, 4)
        out.style_b = np.asarray(style_b, dtype=np.float64).reshape(-1, 4)
    else:
        out.has_style = False
    return out
