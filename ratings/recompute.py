"""Every leaderboard view from the stored votes, in one run.

One SQL GROUP BY (model pair, outcome and the per-vote category columns)
feeds all count-based views; style control reads the four style counts per
vote, stored when the vote was written. The fits are ratings.engine's.

Views:
- ``overall``: every counted vote.
- ``coding``: the prompt or an answer holds code.
- ``long_prompt``: prompts of at least 500 tokens.
- ``multi_turn``: conversations of more than one turn.
- ``no_ties``: ties and both-bad votes left out.
- ``lang:<code>``: prompts in that language, for languages with enough votes.
- ``overall`` with style control (contextual BT; coefficients reported).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Q, Sum

from arena.models import ArenaModel

from . import engine
from .selectors import WINNER_SCORE, counted_votes

LONG_PROMPT_TOKENS = 500
LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "de": "German",
    "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi",
    "el": "Greek", "he": "Hebrew", "th": "Thai",
}
BASE_LABELS = {
    "overall": "Overall",
    "coding": "Coding",
    "long_prompt": "Long prompts (≥ 500 tokens)",
    "multi_turn": "Multi-turn",
    "no_ties": "Ties excluded",
}


@dataclass
class VoteTable:
    """The GROUP BY (model_a, model_b, winner) result over one shared model
    index, with a count column per category."""

    model_ids: list[int]
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    counts: dict[str, tuple[str, np.ndarray]]


@dataclass
class ViewResult:
    key: str
    label: str
    style_control: bool
    vote_count: int
    counts_fingerprint: str
    rows: list[dict]
    pairs: np.ndarray
    style_coefficients: dict | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class VoteSet:
    """Identity of the counted votes: what the snapshot fingerprint covers."""

    count: int
    last_id: int
    id_sum: int
    fingerprint: str


def vote_set_summary() -> tuple[int, int, int]:
    """(count, max id, sum of ids) of the counted votes, in one query."""
    agg = counted_votes().aggregate(c=Count("id"), m=Max("id"), s=Sum("id"))
    return int(agg["c"] or 0), int(agg["m"] or 0), int(agg["s"] or 0)


def battle_rows() -> np.ndarray:
    """Every counted vote, ordered by id, as int64 rows:
    (id, model_a_id, model_b_id, 2y, 8 style counts or -1 when unknown).

    This is the one per-vote read of a recompute: the ids give the
    fingerprint, the style counts feed style control. PostgreSQL sends it as
    binary COPY, parsed by numpy without a Python object per value.
    """
    from django.db import connection

    score = "CASE winner WHEN 'a' THEN 2 WHEN 'b' THEN 0 ELSE 1 END"
    if connection.vendor == "postgresql":
        style = ", ".join(
            f"COALESCE(CASE WHEN jsonb_typeof(style) = 'array' THEN (style->>{k})::int8 END, -1)" for k in range(8)
        )
        sql = (
            f"SELECT id::int8, model_a_id::int8, model_b_id::int8, ({score})::int8, {style} "
            "FROM votes_vote WHERE excluded = false ORDER BY id"
        )
        buf = bytearray()
        with connection.cursor() as cur:
            with cur.connection.cursor() as raw, raw.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
                for chunk in copy:
                    buf += chunk
        return _parse_binary_copy(bytes(buf), 12)
    style = ", ".join(
        f"COALESCE(CASE WHEN json_type(style) = 'array' THEN CAST(json_extract(style, '$[{k}]') AS INTEGER) END, -1)"
        for k in range(8)
    )
    sql = f"SELECT id, model_a_id, model_b_id, {score}, {style} FROM votes_vote WHERE excluded = %s ORDER BY id"
    with connection.cursor() as cur:
        cur.execute(sql, [False])
        rows = cur.fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1, 12)


def _parse_binary_copy(data: bytes, ncols: int) -> np.ndarray:
    """PostgreSQL binary COPY of ``ncols`` non-null int8 columns -> (rows, ncols) int64."""
    header = 11 + 4 + 4 + int.from_bytes(data[15:19], "big")
    body = data[header:-2]  # the trailer is int16 -1
    record = np.dtype([("n", ">i2")] + [(f"c{k}", [("len", ">i4"), ("v", ">i8")]) for k in range(ncols)])
    arr = np.frombuffer(body, dtype=record)
    if len(arr) and not ((arr["n"] == ncols).all() and all((arr[f"c{k}"]["len"] == 8).all() for k in range(ncols))):
        raise ValueError("unexpected binary COPY layout")
    return np.column_stack([arr[f"c{k}"]["v"].astype(np.int64) for k in range(ncols)]) if len(arr) else np.zeros(
        (0, ncols), dtype=np.int64
    )


def vote_set_from(rows: np.ndarray) -> VoteSet:
    ids = np.ascontiguousarray(rows[:, 0]).astype("<i8")
    digest = hashlib.sha256(ids.tobytes()).hexdigest()
    return VoteSet(len(ids), int(ids[-1]) if len(ids) else 0, int(ids.sum()) if len(ids) else 0, digest)


def vote_table(min_language_votes: int) -> VoteTable:
    """One GROUP BY (model_a, model_b, winner) with a filtered count per category."""
    languages = [
        code
        for code, n in counted_votes().exclude(language="").values_list("language").annotate(n=Count("id")).order_by()
        if n >= min_language_votes
    ]
    columns = {
        "overall": Count("id"),
        "coding": Count("id", filter=Q(is_code=True)),
        "long_prompt": Count("id", filter=Q(prompt_tokens__gte=LONG_PROMPT_TOKENS)),
        "multi_turn": Count("id", filter=Q(turns__gt=1)),
    }
    for k, code in enumerate(sorted(languages)):
        columns[f"lang_{k}"] = Count("id", filter=Q(language=code))
    rows = list(
        counted_votes().values_list("model_a_id", "model_b_id", "winner").annotate(**columns).order_by()
    )
    ids = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {mid: i for i, mid in enumerate(ids)}
    table = np.array([r[3:] for r in rows], dtype=float).reshape(len(rows), len(columns))
    y = np.array([WINNER_SCORE[r[2]] for r in rows], dtype=float)
    counts: dict[str, tuple[str, np.ndarray]] = {}
    for k, key in enumerate(["overall", "coding", "long_prompt", "multi_turn"]):
        counts[key] = (BASE_LABELS[key], table[:, k])
    counts["no_ties"] = (BASE_LABELS["no_ties"], np.where(y != 0.5, table[:, 0], 0.0))
    for k, code in enumerate(sorted(languages)):
        counts[f"lang:{code}"] = (LANGUAGE_NAMES.get(code, code), table[:, 4 + k])
    return VoteTable(
        model_ids=ids,
        a=np.array([index[r[0]] for r in rows], dtype=np.int64),
        b=np.array([index[r[1]] for r in rows], dtype=np.int64),
        y=y,
        counts=counts,
    )


def counts_fingerprint(pc: engine.PairCounts, names: list[str]) -> str:
    """sha256 of the view's count table, reproducible from an export:
    the model names sorted and joined by newlines, then for each (a, b, y)
    row in sorted order four little-endian int64s: the positions of a and b
    in the sorted names, 2y, and the count."""
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    position = np.empty(len(names), dtype=np.int64)
    position[order] = np.arange(len(names))
    table = np.column_stack(
        [position[pc.a], position[pc.b], np.rint(pc.y * 2).astype(np.int64), np.rint(pc.count).astype(np.int64)]
    ).astype("<i8")
    table = table[np.lexsort((table[:, 2], table[:, 1], table[:, 0]))]
    digest = hashlib.sha256("\n".join(sorted(names)).encode())
    digest.update(table.tobytes())
    return digest.hexdigest()


def _rows(lb, names, meta, active) -> tuple[list[dict], dict[int, int]]:
    rows = []
    for i in np.flatnonzero(active):
        info = meta[i]
        rows.append({
            "model": names[i],
            "organization": info["organization"],
            "license": info["license"],
            "status": info["status"],
            "rating": round(float(lb.rating[i]), 4),
            "lower": round(float(lb.lower[i]), 4),
            "upper": round(float(lb.upper[i]), 4),
            "rank": int(lb.rank[i]),
            "battles": int(lb.battles[i]),
            "wins": int(lb.wins[i]),
            "losses": int(lb.losses[i]),
            "ties": int(lb.ties[i]),
            "theta": round(float(lb.theta[i]), 8),
            "flags": lb.flags.get(int(i), []),
            "_i": int(i),
        })
    rows.sort(key=lambda r: (r["rank"], -r["rating"], r["model"]))
    position = {r.pop("_i"): k for k, r in enumerate(rows)}
    return rows, position


def _pairs(pc: engine.PairCounts, position: dict[int, int]) -> np.ndarray:
    """(i, j, battles, points of i) per met pair, i and j as row positions."""
    lo, hi, inv, score_lo = pc.pair_map
    c = np.bincount(inv, pc.count, len(lo))
    s = np.bincount(inv, pc.count * score_lo, len(lo))
    pos = np.full(pc.n_models, -1, dtype=np.int64)
    for model, row in position.items():
        pos[model] = row
    keep = (c > 0) & (pos[lo] >= 0) & (pos[hi] >= 0)
    return np.column_stack([pos[lo][keep], pos[hi][keep], c[keep], s[keep]]).astype(np.float64)


def _view(key, label, pc, names, meta, *, ci, rounds, seed) -> ViewResult:
    lb = engine.leaderboard(pc, names=names, ci=ci, rounds=rounds, seed=seed)
    rows, position = _rows(lb, names, meta, lb.active)
    return ViewResult(
        key=key,
        label=label,
        style_control=False,
        vote_count=int(round(pc.total)),
        counts_fingerprint=counts_fingerprint(pc, names),
        rows=rows,
        pairs=_pairs(pc, position),
        warnings=lb.warnings,
    )


def _style_view(
    t: VoteTable, rows: np.ndarray, names, meta, *, beta_l2: float, theta0: np.ndarray
) -> ViewResult | None:
    data = rows[rows[:, 4] >= 0]
    if not len(data):
        return None
    index = np.full(max(t.model_ids) + 1, -1, dtype=np.int64)
    index[t.model_ids] = np.arange(len(t.model_ids))
    a, b = index[data[:, 1]], index[data[:, 2]]
    y = data[:, 3] / 2.0
    x = data[:, 4:].astype(float)
    keep = a != b
    a, b, y, x = a[keep], b[keep], y[keep], x[keep]
    n = len(t.model_ids)
    feats = engine.style_design(x[:, :4], x[:, 4:])
    pc = engine.aggregate(a, b, y, n)
    diag = engine.diagnose(pc, names)
    l2 = 0.0 if diag.mle_exists else engine.FALLBACK_L2
    fit = engine.fit_style_bt(a, b, y, feats, n, l2=l2, beta_l2=beta_l2, theta0=theta0)
    rating = engine.theta_to_points(fit.theta)
    half = engine.Z95 * fit.se_theta * engine.POINTS_PER_THETA
    active = diag.battles > 0
    rank = np.zeros(n, dtype=np.int64)
    rank[active] = engine.rank_ub((rating - half)[active], (rating + half)[active])
    lb = engine.Leaderboard(
        rating=rating, lower=rating - half, upper=rating + half, rank=rank, theta=fit.theta,
        battles=diag.battles, wins=diag.wins, losses=diag.losses, ties=diag.ties, active=active,
        fit=engine.BTFit(fit.theta, l2, fit.iterations, fit.grad_norm, True), warnings=diag.warnings,
        flags=diag.flags, ci="sandwich",
    )
    rows, position = _rows(lb, names, meta, active)
    return ViewResult(
        key="overall",
        label="Overall, style controlled",
        style_control=True,
        vote_count=int(len(a)),
        counts_fingerprint=counts_fingerprint(pc, names),
        rows=rows,
        pairs=_pairs(pc, position),
        style_coefficients={k: round(float(v), 6) for k, v in zip(engine.STYLE_FEATURES, fit.beta, strict=True)},
        warnings=diag.warnings,
    )


def compute_views(
    *, rows: np.ndarray | None = None, ci: str = "sandwich", rounds: int = 100, seed: int = 0, style: bool = True
) -> tuple[VoteSet, list[ViewResult]]:
    """The counted votes' identity and all views over them. Reads only.
    ``rows``: battle_rows() when the caller already has them."""
    rows = battle_rows() if rows is None else rows
    votes = vote_set_from(rows)
    t = vote_table(getattr(settings, "RATINGS_MIN_CATEGORY_VOTES", 50))
    if not t.model_ids:
        return votes, []
    models = {m.id: m for m in ArenaModel.objects.filter(id__in=t.model_ids)}
    names = [models[i].name for i in t.model_ids]
    meta = [
        {"organization": models[i].organization, "license": models[i].license, "status": models[i].status}
        for i in t.model_ids
    ]
    n = len(t.model_ids)
    views = []
    for key, (label, counts) in t.counts.items():
        if counts.sum() == 0:
            continue
        pc = engine.aggregate(t.a, t.b, t.y, n, count=counts)
        if pc.total == 0:
            continue
        views.append(_view(key, label, pc, names, meta, ci=ci, rounds=rounds, seed=seed))
    if style:
        overall = next((v for v in views if v.key == "overall"), None)
        theta0 = np.zeros(n)
        if overall is not None:
            by_name = {r["model"]: r["theta"] for r in overall.rows}
            theta0 = np.array([by_name.get(name, 0.0) for name in names])
        sv = _style_view(t, rows, names, meta, beta_l2=getattr(settings, "RATINGS_STYLE_L2", 0.5), theta0=theta0)
        if sv is not None:
            views.append(sv)
    return votes, views
