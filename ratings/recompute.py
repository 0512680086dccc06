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
from django.db.models import BooleanField, Case, Count, IntegerField, Max, Sum, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

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
    """The GROUP BY result as arrays over one shared model index."""

    model_ids: list[int]
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    n: np.ndarray
    language: np.ndarray
    code: np.ndarray
    long: np.ndarray
    multi: np.ndarray


@dataclass
class ViewResult:
    key: str
    label: str
    style_control: bool
    vote_count: int
    counts_fingerprint: str
    rows: list[dict]
    pairs: list[list]
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


def vote_set() -> VoteSet:
    ids = np.fromiter(
        counted_votes().order_by("id").values_list("id", flat=True).iterator(chunk_size=100_000), dtype="<i8"
    )
    digest = hashlib.sha256(ids.tobytes()).hexdigest()
    return VoteSet(len(ids), int(ids[-1]) if len(ids) else 0, int(ids.sum()) if len(ids) else 0, digest)


def vote_table() -> VoteTable:
    qs = (
        counted_votes()
        .annotate(
            long=Case(When(prompt_tokens__gte=LONG_PROMPT_TOKENS, then=Value(True)), default=Value(False),
                      output_field=BooleanField()),
            multi=Case(When(turns__gt=1, then=Value(True)), default=Value(False), output_field=BooleanField()),
        )
        .values_list("model_a_id", "model_b_id", "winner", "language", "is_code", "long", "multi")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = list(qs)
    ids = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {mid: i for i, mid in enumerate(ids)}
    return VoteTable(
        model_ids=ids,
        a=np.array([index[r[0]] for r in rows], dtype=np.int64),
        b=np.array([index[r[1]] for r in rows], dtype=np.int64),
        y=np.array([WINNER_SCORE[r[2]] for r in rows], dtype=float),
        n=np.array([r[7] for r in rows], dtype=float),
        language=np.array([r[3] or "" for r in rows], dtype=object),
        code=np.array([bool(r[4]) for r in rows], dtype=bool),
        long=np.array([bool(r[5]) for r in rows], dtype=bool),
        multi=np.array([bool(r[6]) for r in rows], dtype=bool),
    )


def category_masks(t: VoteTable, min_language_votes: int) -> dict[str, tuple[str, np.ndarray]]:
    all_rows = np.ones(len(t.n), dtype=bool)
    masks = {
        "overall": (BASE_LABELS["overall"], all_rows),
        "coding": (BASE_LABELS["coding"], t.code),
        "long_prompt": (BASE_LABELS["long_prompt"], t.long),
        "multi_turn": (BASE_LABELS["multi_turn"], t.multi),
        "no_ties": (BASE_LABELS["no_ties"], t.y != 0.5),
    }
    for code in sorted({c for c in t.language if c}):
        m = t.language == code
        if t.n[m].sum() >= min_language_votes:
            masks[f"lang:{code}"] = (LANGUAGE_NAMES.get(code, code), m)
    return masks


def counts_fingerprint(pc: engine.PairCounts, names: list[str]) -> str:
    table = sorted(
        f"{names[int(i)]}\t{names[int(j)]}\t{yy}\t{int(c)}" for i, j, yy, c in zip(pc.a, pc.b, pc.y, pc.count, strict=True)
    )
    return hashlib.sha256("\n".join(table).encode()).hexdigest()


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


def _pairs(pc: engine.PairCounts, position: dict[int, int]) -> list[list]:
    lo, hi, inv, score_lo = pc.pair_map
    c = np.bincount(inv, pc.count, len(lo))
    s = np.bincount(inv, pc.count * score_lo, len(lo))
    out = []
    for i, j, cc, ss in zip(lo.tolist(), hi.tolist(), c.tolist(), s.tolist(), strict=True):
        if cc > 0 and i in position and j in position:
            out.append([position[i], position[j], int(cc), ss])
    return out


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


def _style_view(t: VoteTable, names, meta, overall_pc, *, beta_l2: float) -> ViewResult | None:
    index = {mid: i for i, mid in enumerate(t.model_ids)}
    fields = [f"s{k}" for k in range(8)]
    qs = (
        counted_votes()
        .filter(style__isnull=False)
        .annotate(**{f: Cast(KT(f"style__{k}"), IntegerField()) for k, f in enumerate(fields)})
        .values_list("model_a_id", "model_b_id", "winner", *fields)
        .order_by()
    )
    data = list(qs.iterator(chunk_size=50_000))
    if not data:
        return None
    a = np.array([index[r[0]] for r in data], dtype=np.int64)
    b = np.array([index[r[1]] for r in data], dtype=np.int64)
    y = np.array([WINNER_SCORE[r[2]] for r in data], dtype=float)
    x = np.array([r[3:] for r in data], dtype=float)
    keep = a != b
    a, b, y, x = a[keep], b[keep], y[keep], x[keep]
    n = len(t.model_ids)
    feats = engine.style_design(x[:, :4], x[:, 4:])
    pc = engine.aggregate(a, b, y, n)
    diag = engine.diagnose(pc, names)
    l2 = 0.0 if diag.mle_exists else engine.FALLBACK_L2
    fit = engine.fit_style_bt(a, b, y, feats, n, l2=l2, beta_l2=beta_l2)
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


def compute_views(*, ci: str = "sandwich", rounds: int = 100, seed: int = 0, style: bool = True) -> list[ViewResult]:
    """All views over the counted votes. Reads the database; writes nothing."""
    t = vote_table()
    if not t.model_ids:
        return []
    models = {m.id: m for m in ArenaModel.objects.filter(id__in=t.model_ids)}
    names = [models[i].name for i in t.model_ids]
    meta = [
        {"organization": models[i].organization, "license": models[i].license, "status": models[i].status}
        for i in t.model_ids
    ]
    n = len(t.model_ids)
    views = []
    min_lang = getattr(settings, "RATINGS_MIN_CATEGORY_VOTES", 50)
    overall_pc = None
    for key, (label, mask) in category_masks(t, min_lang).items():
        if not mask.any():
            continue
        pc = engine.aggregate(t.a[mask], t.b[mask], t.y[mask], n, count=t.n[mask])
        if pc.total == 0:
            continue
        if key == "overall":
            overall_pc = pc
        views.append(_view(key, label, pc, names, meta, ci=ci, rounds=rounds, seed=seed))
    if style and overall_pc is not None:
        sv = _style_view(t, names, meta, overall_pc, beta_l2=getattr(settings, "RATINGS_STYLE_L2", 0.5))
        if sv is not None:
            views.append(sv)
    return views

