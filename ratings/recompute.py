"""Every leaderboard view from the stored votes, in one run.

One consistent read (one REPEATABLE READ transaction on PostgreSQL) takes:
- the ids of the counted votes (the snapshot's fingerprint), and the pair,
  outcome and eight style columns of those with style counts: the only
  per-vote read, for style control, whose likelihood is per battle;
- one SQL GROUP BY (model pair, outcome) with a filtered count per category,
  which feeds every other view.
On PostgreSQL each result comes back as a few byte strings built by the
server (fixed-width records, or ``array_send(array_agg(…))``) and parsed by
numpy, so no Python object is made per vote or per group. The fits are
ratings.engine's.

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

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Sum

from arena.models import ArenaModel
from votes.models import STYLE_FIELDS

from . import engine
from .selectors import counted_votes

LONG_PROMPT_TOKENS = 500
LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "ru": "Russian",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ar": "Arabic",
    "hi": "Hindi",
    "el": "Greek",
    "he": "Hebrew",
    "th": "Thai",
}
BASE_LABELS = {
    "overall": "Overall",
    "coding": "Coding",
    "long_prompt": "Long prompts (≥ 500 tokens)",
    "multi_turn": "Multi-turn",
    "no_ties": "Ties excluded",
}
# Twice the score of model a, an integer: a won 2, tie or both bad 1, b won 0.
SCORE2_SQL = "CASE winner WHEN 'a' THEN 2 WHEN 'b' THEN 0 ELSE 1 END"
# The GROUP BY's filtered counts; language columns are appended per run.
CATEGORY_FILTERS = {
    "coding": "is_code",
    "long_prompt": f"prompt_tokens >= {LONG_PROMPT_TOKENS}",
    "multi_turn": "turns > 1",
}
# PostgreSQL planner settings for the reads, which all touch every counted
# vote: a hash aggregate over a sequential scan. With the default 4 MB of
# work_mem the planner walks votes_vote_aggregate instead, one random heap
# read per vote: measured 5.0 s against 1.4 s on a million votes.
PG_READ_SETTINGS = {"work_mem": "64MB", "enable_indexscan": "off", "enable_bitmapscan": "off"}


@dataclass
class VoteTable:
    """The GROUP BY (model_a, model_b, outcome) result over one shared model
    index, with a count column per category."""

    model_ids: list[int]
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    counts: dict[str, tuple[str, np.ndarray]]


@dataclass
class StyleVotes:
    """The counted votes with style counts: model ids, 2y, and the eight
    count columns (STYLE_FIELDS order), one array each."""

    a: np.ndarray
    b: np.ndarray
    score2: np.ndarray
    counts: list[np.ndarray]


@dataclass
class VoteSet:
    """Identity of the counted votes: what the snapshot fingerprint covers."""

    count: int
    last_id: int
    id_sum: int
    fingerprint: str


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
    tie_param: dict | None = None  # Davidson's nu and its interval (RATINGS_TIES = "davidson")


def vote_set_summary() -> tuple[int, int, int]:
    """(count, max id, sum of ids) of the counted votes, in one query."""
    agg = counted_votes().aggregate(c=Count("id"), m=Max("id"), s=Sum("id"))
    return int(agg["c"] or 0), int(agg["m"] or 0), int(agg["s"] or 0)


@contextlib.contextmanager
def consistent_reads() -> Iterator[None]:
    """Every query inside sees the same votes, so the fingerprint, the
    counts and the style rows describe one vote set even while votes arrive.

    PostgreSQL: a read-only REPEATABLE READ transaction (unless the caller
    already opened one, as tests do). SQLite: a transaction is already one
    snapshot.
    """
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _scan_settings(cur) -> None:
    """PG_READ_SETTINGS for the rest of the transaction (the reads of every vote)."""
    if connection.vendor == "postgresql":
        cur.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in PG_READ_SETTINGS),
            [x for item in PG_READ_SETTINGS.items() for x in item],
        )


# --------------------------------------------------------------------------
# PostgreSQL arrays


_ARRAY_WIDTH = {20: 8, 23: 4, 21: 2}  # element type oid (int8, int4, int2) -> bytes


def _array(data: bytes | None) -> np.ndarray:
    """``array_send()`` of a one-dimensional integer array without NULLs
    (None for an aggregate over no rows), in native byte order and the
    array's own width."""
    if data is None:
        return np.zeros(0, dtype=np.int64)
    head = np.frombuffer(data, dtype=">i4", count=3)
    ndim, has_nulls, oid = int(head[0]), int(head[1]), int(head[2])
    if ndim == 0:
        return np.zeros(0, dtype=np.int64)
    width = _ARRAY_WIDTH.get(oid)
    if ndim != 1 or has_nulls or width is None:
        raise ValueError(f"expected a 1-D integer array without NULLs, got ndim={ndim} oid={oid} nulls={has_nulls}")
    n = int(np.frombuffer(data, dtype=">i4", count=1, offset=12)[0])
    items = np.frombuffer(data, dtype=[("len", ">i4"), ("v", f">i{width}")], count=n, offset=20)
    if not (items["len"] == width).all():
        raise ValueError("unexpected array element length")
    return items["v"].astype(f"=i{width}")


def _fetch_arrays(sql: str, params: list) -> list[np.ndarray]:
    """One row of array_send() columns, fetched in binary (no hex round trip).
    Django's cursors bind on the client, which has no binary results."""
    with connection.cursor() as cur, psycopg.Cursor(cur.connection) as raw:
        raw.execute(sql, params, binary=True)
        row = raw.fetchone()
    return [_array(value) for value in row]


# --------------------------------------------------------------------------
# the reads


# One style row as PostgreSQL's binary send functions write it (big-endian,
# no padding): model a, model b, 2y, then the eight counts.
STYLE_RECORD = np.dtype([("a", ">i8"), ("b", ">i8"), ("score2", ">i2"), *((name, ">i4") for name in STYLE_FIELDS)])
# A string_agg value may not pass 1 GB; this many pages of votes stay far below.
MAX_PAGES_PER_PART = 50_000


def counted_ids_and_style() -> tuple[np.ndarray, StyleVotes]:
    """Sorted ids of the counted votes, and the style rows of those that have them."""
    known = "style_a_tokens IS NOT NULL"
    if connection.vendor == "postgresql":
        # Each vote becomes fixed-width bytes, concatenated by string_agg: half
        # the volume of one array per column (no per-element lengths), and
        # moving the bytes to the client is most of the cost of this read.
        record = "||".join(
            ["int8send(model_a_id)", "int8send(model_b_id)", f"int2send(({SCORE2_SQL})::int2)",
             *(f"int4send({name})" for name in STYLE_FIELDS)]
        )  # fmt: skip
        select = f"string_agg(int8send(id), ''::bytea), string_agg({record}, ''::bytea) FILTER (WHERE {known})"
        sql = " UNION ALL ".join(f"SELECT {select} FROM votes_vote WHERE NOT excluded{part}" for part in _table_parts())
        with connection.cursor() as cur, psycopg.Cursor(cur.connection) as raw:
            _scan_settings(cur)
            raw.execute(sql, binary=True)  # Django's cursors bind on the client, which has no binary results
            parts = raw.fetchall()
        ids = np.sort(np.concatenate([np.frombuffer(p[0] or b"", dtype=">i8") for p in parts]).astype(np.int64))
        rows = np.concatenate([np.frombuffer(p[1] or b"", dtype=STYLE_RECORD) for p in parts])
        return ids, StyleVotes(
            rows["a"].astype(np.int64), rows["b"].astype(np.int64), rows["score2"].astype(np.int64),
            [rows[name].astype(np.int64) for name in STYLE_FIELDS],
        )  # fmt: skip
    columns = ["model_a_id", "model_b_id", f"({SCORE2_SQL})", *STYLE_FIELDS]
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM votes_vote WHERE excluded = %s ORDER BY id", [False])
        ids = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
        cur.execute(f"SELECT {', '.join(columns)} FROM votes_vote WHERE excluded = %s AND {known}", [False])
        rows = np.array(cur.fetchall(), dtype=np.int64).reshape(-1, len(columns))
    return ids, StyleVotes(rows[:, 0], rows[:, 1], rows[:, 2], list(rows[:, 3:].T))


def _table_parts() -> list[str]:
    """Conditions that split votes_vote into disjoint ranges of pages: one
    per process the server may run a query on (its parallel workers plus
    the leader, at most 8), and more on a very large table.

    string_agg has no parallel form before PostgreSQL 16, so the per-vote
    read is a UNION ALL of one aggregate per range, which a Parallel Append
    runs side by side: still one statement, hence one snapshot. Each branch
    is a TID range scan of its pages; the last one is open-ended, so rows
    on pages added meanwhile are never missed.
    """
    with connection.cursor() as cur:
        cur.execute(
            "SELECT current_setting('max_parallel_workers_per_gather')::int, "
            "pg_relation_size('votes_vote') / current_setting('block_size')::int"
        )
        workers, pages = cur.fetchone()
    parts = max(1, min(8, workers + 1, pages), -(-pages // MAX_PAGES_PER_PART))
    bounds = [pages * k // parts for k in range(1, parts)]
    lows, highs = [None, *bounds], [*bounds, None]
    return [
        (f" AND ctid >= '({lo},0)'::tid" if lo is not None else "")
        + (f" AND ctid < '({hi},0)'::tid" if hi is not None else "")
        for lo, hi in zip(lows, highs, strict=True)
    ]


def frequent_languages(min_votes: int) -> list[str]:
    """Languages of at least ``min_votes`` counted votes, sorted."""
    with connection.cursor() as cur:
        _scan_settings(cur)
        cur.execute(
            "SELECT language FROM votes_vote WHERE excluded = %s AND language <> '' "
            "GROUP BY language HAVING COUNT(*) >= %s ORDER BY language",
            [False, min_votes],
        )
        return [r[0] for r in cur.fetchall()]


def vote_table(min_language_votes: int) -> VoteTable:
    """One GROUP BY (model_a, model_b, outcome) with a count per category.
    Inside consistent_reads(), like counted_ids_and_style()."""
    languages = frequent_languages(min_language_votes)
    filters = [*CATEGORY_FILTERS.values(), *(["language = %s"] * len(languages))]
    # COUNT(CASE …) rather than COUNT(*) FILTER (…): the same counts, measured
    # 10-20% faster on PostgreSQL 15 (and both work on SQLite).
    counts = ["COUNT(*)", *(f"COUNT(CASE WHEN {f} THEN 1 END)" for f in filters)]
    names = ["a", "b", "y2", *(f"c{k}" for k in range(len(counts)))]
    group = (
        f"SELECT model_a_id AS a, model_b_id AS b, {SCORE2_SQL} AS y2, "
        + ", ".join(f"{expr} AS c{k}" for k, expr in enumerate(counts))
        + " FROM votes_vote WHERE excluded = %s GROUP BY model_a_id, model_b_id, y2"
    )
    params = [*languages, False]
    if connection.vendor == "postgresql":
        select = ", ".join(f"array_send(array_agg({name}))" for name in names)
        table = np.column_stack(_fetch_arrays(f"SELECT {select} FROM ({group}) g", params))
    else:
        with connection.cursor() as cur:
            cur.execute(group, params)
            table = np.array(cur.fetchall(), dtype=np.int64)
    table = table.reshape(-1, len(names))
    ids = np.union1d(table[:, 0], table[:, 1]).tolist()
    index = _index_of(ids)
    y = table[:, 2] / 2.0
    total = table[:, 3].astype(float)
    columns: dict[str, tuple[str, np.ndarray]] = {"overall": (BASE_LABELS["overall"], total)}
    for k, key in enumerate(CATEGORY_FILTERS, start=4):
        columns[key] = (BASE_LABELS[key], table[:, k].astype(float))
    columns["no_ties"] = (BASE_LABELS["no_ties"], np.where(y != 0.5, total, 0.0))
    for k, code in enumerate(languages, start=4 + len(CATEGORY_FILTERS)):
        columns[f"lang:{code}"] = (LANGUAGE_NAMES.get(code, code), table[:, k].astype(float))
    return VoteTable(model_ids=ids, a=index[table[:, 0]], b=index[table[:, 1]], y=y, counts=columns)


def _index_of(model_ids: list[int]) -> np.ndarray:
    """Model id -> position in ``model_ids`` (-1 elsewhere), as a lookup array."""
    index = np.full(max(model_ids, default=0) + 1, -1, dtype=np.int64)
    index[model_ids] = np.arange(len(model_ids))
    return index


def vote_set_from(ids: np.ndarray) -> VoteSet:
    """Fingerprint: sha256 of the sorted ids as 8-byte little-endian integers."""
    ids = np.ascontiguousarray(ids, dtype="<i8")
    digest = hashlib.sha256(ids.tobytes()).hexdigest()
    return VoteSet(len(ids), int(ids[-1]) if len(ids) else 0, int(ids.sum()) if len(ids) else 0, digest)


# --------------------------------------------------------------------------
# the views


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


def rows_of(lb, names, model_ids, active) -> tuple[list[dict], dict[int, int]]:
    """Stored rows hold the model id and numbers only: names and registry
    details are joined when read (ratings.selectors.joined), so an edit in
    the registry never waits for a recompute."""
    rows = []
    for i in np.flatnonzero(active):
        rows.append(
            {
                "model_id": int(model_ids[i]),
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
                # simultaneous 95% bounds (all models at once), for ?intervals=simultaneous
                **(
                    {"lower_sim": round(float(lb.sim_lower[i]), 4), "upper_sim": round(float(lb.sim_upper[i]), 4)}
                    if lb.sim_lower is not None
                    else {}
                ),
            }
        )
    rows.sort(key=lambda r: (r["rank"], -r["rating"], names[r["_i"]]))
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


def _view(key, label, pc, names, model_ids, *, ci, rounds, seed) -> ViewResult:
    lb = engine.leaderboard(
        pc, names=names, ci=ci, rounds=rounds, seed=seed, simultaneous=True, ties=settings.RATINGS_TIES
    )
    rows, position = rows_of(lb, names, model_ids, lb.active)
    return ViewResult(
        key=key,
        label=label,
        style_control=False,
        vote_count=int(round(pc.total)),
        counts_fingerprint=counts_fingerprint(pc, names),
        rows=rows,
        pairs=_pairs(pc, position),
        warnings=lb.warnings,
        tie_param=lb.tie_param,
    )


def _style_view(
    t: VoteTable,
    style: StyleVotes,
    names,
    model_ids,
    *,
    beta_l2: float,
    theta0: np.ndarray,
    ci: str,
    rounds: int,
    seed: int,
) -> ViewResult | None:
    """Contextual BT over the votes with style counts, through the same
    ``engine.leaderboard`` as ``rate_battles --style-control``: the
    snapshot's interval method (sandwich from the full (theta, beta)
    Hessian, bootstrap over battles, or none), marginal and simultaneous."""
    index = _index_of(t.model_ids)
    a, b, y = index[style.a], index[style.b], style.score2 / 2.0
    counts = style.counts
    keep = a != b
    if not keep.all():  # counted votes never pair a model with itself, but the fit would break
        a, b, y, counts = a[keep], b[keep], y[keep], [c[keep] for c in counts]
    if not len(a):
        return None
    n = len(t.model_ids)
    pc = engine.aggregate(a, b, y, n)
    battles = engine.StyleBattles(a=a, b=b, y=y, features=engine.style_rows(counts[:4], counts[4:]).T)
    lb = engine.leaderboard(
        pc,
        names=names,
        ci=ci,
        rounds=rounds,
        seed=seed,
        simultaneous=True,
        style=battles,
        beta_l2=beta_l2,
        theta0=theta0,
    )
    rows, position = rows_of(lb, names, model_ids, lb.active)
    return ViewResult(
        key="overall",
        label="Overall, style controlled",
        style_control=True,
        vote_count=int(len(a)),
        counts_fingerprint=counts_fingerprint(pc, names),
        rows=rows,
        pairs=_pairs(pc, position),
        style_coefficients={k: round(v, 6) for k, v in lb.style_coefficients.items()},
        warnings=lb.warnings,
    )


def compute_views(
    t: VoteTable, style: StyleVotes | None, *, ci: str = "sandwich", rounds: int = 100, seed: int = 0
) -> list[ViewResult]:
    """All views of one vote set (``style`` None: no style-controlled view).
    Reads only the model names (for warnings and the count fingerprints)."""
    if not t.model_ids:
        return []
    models = dict(ArenaModel.objects.filter(id__in=t.model_ids).values_list("id", "name"))
    names = [models[i] for i in t.model_ids]
    n = len(t.model_ids)
    views = []
    for key, (label, counts) in t.counts.items():
        if counts.sum() == 0:
            continue
        pc = engine.aggregate(t.a, t.b, t.y, n, count=counts)
        if pc.total == 0:
            continue
        views.append(_view(key, label, pc, names, t.model_ids, ci=ci, rounds=rounds, seed=seed))
    if style is not None:
        overall = next((v for v in views if v.key == "overall"), None)
        theta0 = np.zeros(n)
        if overall is not None:
            by_id = {r["model_id"]: r["theta"] for r in overall.rows}
            theta0 = np.array([by_id.get(mid, 0.0) for mid in t.model_ids])
        sv = _style_view(
            t,
            style,
            names,
            t.model_ids,
            beta_l2=settings.RATINGS_STYLE_L2,
            theta0=theta0,
            ci=ci,
            rounds=rounds,
            seed=seed,
        )
        if sv is not None:
            views.append(sv)
    return views


def rating_points(snap, views: list[ViewResult]) -> list[tuple]:
    """The snapshot's RatingPoint rows (one per model and view), ranked as
    the leaderboard shows them now (ratings.selectors.standings), as tuples
    (key, style_control, model_id, rating, lower, upper, rank, battles)."""
    from .selectors import registry, standings

    reg = registry()
    return [
        (v.key, v.style_control, model_id, r["rating"], r["lower"], r["upper"], r["rank"], r["battles"])
        for v in views
        for model_id, r in standings(v.rows, reg).items()
    ]


def write_rating_points(snap, points: list[tuple]) -> None:
    """Insert the points in the snapshot's transaction. PostgreSQL: one
    INSERT … SELECT FROM unnest() of one array per column (measured faster
    than bulk_create's one parameter per value); elsewhere bulk_create."""
    from .models import RatingPoint

    if not points:
        return
    if connection.vendor != "postgresql":
        fields = ("key", "style_control", "model_id", "rating", "lower", "upper", "rank", "battles")
        RatingPoint.objects.bulk_create(
            [
                RatingPoint(snapshot=snap, created_at=snap.created_at, **dict(zip(fields, p, strict=True)))
                for p in points
            ],
            batch_size=500,
        )
        return
    columns = list(zip(*points, strict=True))
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {RatingPoint._meta.db_table} "
            "(snapshot_id, created_at, key, style_control, model_id, rating, lower, upper, rank, battles) "
            "SELECT %s, %s, * FROM unnest(%s::varchar[], %s::boolean[], %s::bigint[], %s::float8[], %s::float8[], "
            "%s::float8[], %s::int[], %s::int[])",
            [snap.id, snap.created_at, *(list(c) for c in columns)],
        )
