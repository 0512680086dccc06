"""Reads for the ratings: votes aggregated in SQL, and published snapshots.

Snapshot rows hold numbers and a model id only. A model's name, display
name, organization, license and status come from the registry when the row
is read (``registry()`` and ``joined()``), so an edit in the admin shows on
the next request; the deprecated filter and the ranks are computed then too,
among the models listed (``leaderboard_rows()``, ``standings()``), the same
for the leaderboard, the model page, the model API and the admin.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection

from arena import sql
from arena.models import ArenaModel
from arena.standings import SamplingStandings
from votes.models import Vote

from . import engine
from .models import RatingPoint, Snapshot, SnapshotView

WINNER_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
# What each engine flag means, in words shown next to the row (not in a tooltip).
FLAG_TEXT = {
    "only_wins": "won every battle: its rating is held finite by a weak penalty",
    "only_losses": "lost every battle: its rating is held finite by a weak penalty",
    "separated": "its group never lost (or never won) against the rest: held finite by a weak penalty",
    "disconnected": "never compared, even indirectly, with some models: ratings across groups are not comparable",
    "one_battle": "rated from a single battle",
}
# The snapshot header columns newest_snapshot() loads (rows and warnings,
# the big JSON columns, load on access).
HEAD_COLUMNS = (
    "id", "created_at", "method", "ci", "params", "vote_count", "last_vote_id", "vote_id_sum", "fingerprint",
    "duration",
)  # fmt: skip


def counted_votes():
    return Vote.objects.filter(excluded=False)


# HEAD_COLUMNS in the model's field order (as Model.from_db takes them).
_HEAD_ORDER = tuple(f.attname for f in Snapshot._meta.concrete_fields if f.attname in HEAD_COLUMNS)
_HEAD_CONVERT = tuple((Snapshot, name) for name in _HEAD_ORDER)


def newest_snapshot(ci: str | None = None) -> Snapshot | None:
    """The newest published snapshot (of the ``ci`` interval method if
    given): its header, without the row list. The one reader of "the newest
    snapshot"; raw SQL because on the hot leaderboard path compiling the ORM
    query cost as much as running it."""
    where, params = ("WHERE ci = %s ", [ci]) if ci else ("", [])
    row = sql.fetchone(
        f"SELECT {', '.join(_HEAD_ORDER)} FROM {Snapshot._meta.db_table} {where}"
        "ORDER BY created_at DESC, id DESC LIMIT 1",
        params,
    )
    if row is None:
        return None
    # (Model.from_db, not a RawQuerySet: on the vote path building the raw
    # queryset cost more than the query.)
    return Snapshot.from_db(connection.alias, _HEAD_ORDER, sql.reader(*_HEAD_CONVERT)(row))


def snapshot_view(
    snap: Snapshot | int, key: str, style_control: bool, *, with_pairs: bool = False
) -> SnapshotView | None:
    qs = SnapshotView.objects.filter(snapshot=snap, key=key, style_control=style_control)
    if not with_pairs:
        qs = qs.defer("pairs")
    return qs.first()


def min_votes() -> int:
    return int(settings.RATINGS_MIN_VOTES)


# --------------------------------------------------------------------------
# the registry, joined at read time


@dataclass(frozen=True)
class Registry:
    """Every registered model's public details, and a digest of them all:
    the version that caches and ETags of registry-dependent answers carry.

    A digest of the values rather than a timestamp or a counter: admin bulk
    actions and the provider health checks write with ``.update()``, which
    bumps no ``auto_now`` and sends no signal, yet still changes the digest.
    """

    models: dict[int, dict]
    ids: dict[str, int]
    version: str

    def model(self, model_id: int | None, fallback: dict | None = None) -> dict:
        info = self.models.get(model_id) if model_id is not None else None
        if info is not None:
            return info
        # A row of a model no longer registered (an old row naming a model
        # since renamed or deleted): its own name, shown as deprecated, so the
        # default board leaves it out.
        fallback = fallback or {}
        name = fallback.get("model") or f"#{model_id}"
        return {"model": name, "display_name": name, "organization": fallback.get("organization", ""),
                "license": fallback.get("license", ""), "status": "deprecated"}  # fmt: skip


def registry() -> Registry:
    """One small query: id, name, display name, organization, license and status of every model."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT id, name, display_name, organization, license, status FROM {ArenaModel._meta.db_table} ORDER BY id"
        )
        found = cur.fetchall()
    digest = hashlib.sha256(json.dumps(found, separators=(",", ":")).encode()).hexdigest()[:16]
    models = {
        mid: {"model": name, "display_name": display or name, "organization": org, "license": lic, "status": status}
        for mid, name, display, org, lic, status in found
    }
    return Registry(models=models, ids={info["model"]: mid for mid, info in models.items()}, version=digest)


def row_model_id(row: dict, reg: Registry) -> int | None:
    """A stored row's model: its ``model_id``; rows of snapshots published
    before ids were stored name the model instead."""
    if "model_id" in row:
        return row["model_id"]
    return reg.ids.get(row.get("model", ""))


def joined(rows: list[dict], reg: Registry) -> list[dict]:
    """Copies of stored rows with the model's current name and details."""
    out = []
    for r in rows:
        mid = row_model_id(r, reg)
        out.append({**r, "model_id": mid, **reg.model(mid, r)})
    return out


def _caveats(row: dict, floor: int) -> tuple[list[str], list[str]]:
    """(flags, caveats in words) of a row; any makes it unranked."""
    engine_flags = [f for f in row.get("flags") or [] if f != "few_votes"]  # a row ranked twice keeps one
    flags, words = list(engine_flags), []
    if row["battles"] < floor:
        flags.insert(0, "few_votes")
        words.append(f"only {row['battles']} vote{'' if row['battles'] == 1 else 's'}; a rank needs {floor}")
    words += [FLAG_TEXT.get(f, f.replace("_", " ")) for f in engine_flags]
    return flags, words


def rank_rows(rows: list[dict]) -> list[dict]:
    """Honest ranks, in place: a row under RATINGS_MIN_VOTES battles or
    flagged by the engine (one battle, only wins or losses, separated,
    disconnected) is preliminary, with ``rank`` None and its caveats in
    words; the others get rank (UB) among themselves only. Ranked rows
    first, by rank, then the preliminary ones by rating."""
    floor = min_votes()
    established = []
    for r in rows:
        r["flags"], r["caveats"] = _caveats(r, floor)
        r["preliminary"] = bool(r["flags"])
        r["rank"] = None
        if not r["preliminary"]:
            established.append(r)
    if established:
        lower = np.array([r["lower"] for r in established])
        upper = np.array([r["upper"] for r in established])
        for r, rank in zip(established, engine.rank_ub(lower, upper), strict=True):
            r["rank"] = int(rank)
    rows.sort(key=lambda r: (r["preliminary"], r["rank"] or 0, -r["rating"], r["model"]))
    return rows


def leaderboard_rows(
    view: SnapshotView, *, include_deprecated: bool = False, reg: Registry | None = None
) -> list[dict]:
    """The view's rows joined with the registry, deprecated models dropped
    unless asked for, ranked among the listed models (``rank_rows``)."""
    reg = reg or registry()
    rows = [r for r in joined(view.rows, reg) if include_deprecated or r["status"] != "deprecated"]
    return rank_rows(rows)


def standings(rows: list[dict], reg: Registry) -> dict[int, dict]:
    """model id → its row as the leaderboard that lists it shows it: the
    default board (deprecated models hidden) for listed models, the board
    with deprecated models for a deprecated one. The model page, the model
    API and the admin read ranks here, so they match the leaderboard."""
    everyone = joined(rows, reg)
    listed = [r for r in everyone if r["status"] != "deprecated"]
    out = {r["model_id"]: r for r in rank_rows(listed)}
    if len(listed) < len(everyone):  # deprecated models: ranked as the board that shows them ranks them
        out.update({r["model_id"]: r for r in rank_rows([dict(r) for r in everyone]) if r["status"] == "deprecated"})
    return out


def overall_standings(snap: Snapshot | None = None, reg: Registry | None = None) -> dict[int, dict]:
    """``standings()`` of the newest snapshot's overall view (the admin's model list)."""
    snap = snap or newest_snapshot()
    if snap is None:
        return {}
    view = snapshot_view(snap, "overall", False)
    return standings(view.rows, reg or registry()) if view else {}


# A published snapshot never changes: sampling reads its rows once per process.
# Keyed by what identifies it beyond its id (ids repeat in tests); only rows
# keyed by model id are kept (older snapshots name models and are joined to
# the current registry on every read, so a rename shows).
_sampling_cache: dict = {}


def reset_sampling_cache() -> None:
    _sampling_cache.clear()


def sampling_standings(with_pairs: bool) -> SamplingStandings | None:
    """The newest snapshot's overall view as the battle domain's sampling
    reads it (arena/standings.py, registered in ratings/apps.py): counted
    battles and θ (natural-log units) per model id, and, ``with_pairs``, the
    battles of each pair. None before the first snapshot."""
    snap = newest_snapshot()
    if snap is None:
        return None
    key = (snap.id, snap.created_at, snap.fingerprint, with_pairs)
    found = _sampling_cache.get(key)
    if found is not None:
        return found
    view = snapshot_view(snap, "overall", False, with_pairs=with_pairs)
    if view is None:
        return SamplingStandings()
    # Stored rows name models by id (older snapshots by name): joined() reads both.
    stored = joined(view.rows, registry())
    pairs: dict[tuple[int, int], float] = {}
    if with_pairs:
        ids = [r["model_id"] for r in stored]
        for i, j, battles, _points in view.pair_table():
            a, b = ids[int(i)], ids[int(j)]
            if a is not None and b is not None:
                pairs[(min(a, b), max(a, b))] = float(battles)
    found = SamplingStandings(
        battles={r["model_id"]: float(r.get("battles", 0)) for r in stored},
        theta={r["model_id"]: (r["rating"] - 1000.0) / engine.POINTS_PER_THETA for r in stored},
        pair_battles=pairs,
    )
    if all("model_id" in r for r in view.rows):
        if len(_sampling_cache) >= 4:
            _sampling_cache.clear()
        _sampling_cache[key] = found
    return found


# --------------------------------------------------------------------------
# one model


HISTORY_FIELDS = ("snapshot_id", "created_at", "rating", "lower", "upper", "rank", "battles")


def model_history(model: ArenaModel | int, key: str, style_control: bool):
    """A model's points in one view, newest first, as a lazy queryset of
    dicts: slice it (or paginate it) and only that page is read, through
    the ratings_point_history index."""
    model_id = model if isinstance(model, int) else model.id
    return (
        RatingPoint.objects.filter(model_id=model_id, key=key, style_control=style_control)
        .order_by("-created_at", "-snapshot_id")
        .values(*HISTORY_FIELDS)
    )


def history_points(qs) -> list[dict]:
    """Rows of ``model_history`` (a slice of it) in the API's shape."""
    return [
        {"snapshot": p["snapshot_id"], "created_at": p["created_at"], "rating": p["rating"], "lower": p["lower"],
         "upper": p["upper"], "rank": p["rank"], "battles": p["battles"]}
        for p in qs
    ]  # fmt: skip


def model_ratings(snap: Snapshot, model: ArenaModel, reg: Registry | None = None) -> list[dict]:
    """The model's row in each view of the snapshot, ranked as the leaderboard that lists it ranks it."""
    reg = reg or registry()
    out = []
    for v in snap.views.defer("pairs").order_by("style_control", "key"):
        r = standings(v.rows, reg).get(model.id)
        if r is not None:
            out.append({"category": v.key, "label": v.label, "style_control": v.style_control,
                        "rating": r["rating"], "lower": r["lower"], "upper": r["upper"], "rank": r["rank"],
                        "preliminary": r["preliminary"], "caveats": r["caveats"],
                        "battles": r["battles"], "wins": r["wins"], "losses": r["losses"], "ties": r["ties"]})  # fmt: skip
    return out


def model_opponents(snap: Snapshot, model: ArenaModel, reg: Registry | None = None) -> list[dict]:
    view = snapshot_view(snap, "overall", False, with_pairs=True)
    if view is None:
        return []
    reg = reg or registry()
    rows = joined(view.rows, reg)
    ids = [r["model_id"] for r in rows]
    if model.id not in ids:
        return []
    me = ids.index(model.id)
    out = []
    for i, j, battles, points_i in view.pair_table().tolist():
        i, j = int(i), int(j)
        if me not in (i, j):
            continue
        other = j if i == me else i
        points = points_i if i == me else battles - points_i
        out.append({"opponent": rows[other]["model"], "battles": int(battles), "win_rate": round(points / battles, 6)})
    out.sort(key=lambda o: (-o["battles"], o["opponent"]))
    return out


def matrix(view: SnapshotView, kind: str, reg: Registry | None = None) -> tuple[list[str], list[list]]:
    """Rows and columns in the stored order (the snapshot's ranking).
    winrate[i][j]: share of points i scored against j (a tie is half);
    count: battles; predicted: sigma(theta_i - theta_j)."""
    names = [r["model"] for r in joined(view.rows, reg or registry())]
    n = len(names)
    if kind == "predicted":
        theta = np.array([r.get("theta", 0.0) for r in view.rows])
        return names, np.round(engine.predicted_winrate(theta), 6).tolist()
    m: list[list] = [[None] * n for _ in range(n)]
    for i, j, battles, points_i in view.pair_table().tolist():
        i, j = int(i), int(j)
        if kind == "count":
            m[i][j] = m[j][i] = int(battles)
        else:
            m[i][j] = round(points_i / battles, 6)
            m[j][i] = round((battles - points_i) / battles, 6)
    if kind == "count":
        for i in range(n):
            m[i][i] = 0
    return names, m
