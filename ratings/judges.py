"""Judges beside humans: each judge's own leaderboard and its agreement
with the human votes.

The formulas (pure Python/numpy, tested against hand computations):
- ``two_way_agreement``: on battles both a person and the judge voted, with
  every pair where either said tie (or both bad) left out, the share where
  they picked the same model (MT-bench's "agreement without ties").
- ``cohen_kappa``: three categories, A / B / tie, a person's "both bad"
  counted as a tie: κ = (p_o − p_e) / (1 − p_e), p_o the share of equal
  labels, p_e = Σ_k p_human(k)·p_judge(k) the agreement expected by chance.
- ``position_bias_rate``: the share of judged battles whose two orders
  (A/B and swapped) gave different verdicts.
- ``spearman``: Spearman's rank correlation (Pearson's r of the ranks,
  average ranks for equal ratings) between the judge's ratings and the
  human ratings, over the models on both boards.

The leaderboard is Bradley–Terry on the judge's verdicts (a tie half a win),
fitted by ratings.engine with sandwich intervals, the human method.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence

import numpy as np
from django.db import transaction
from django.db.models import Count, Max, Sum

from arena.models import Judge
from votes.models import JudgeVote, Vote

from . import engine, recompute
from .models import JudgeBoard, Snapshot

log = logging.getLogger(__name__)

LABELS = ("a", "b", "tie")
SOURCE_HUMAN = "human"
SOURCE_PREFIX = "judge:"
KEEP_BOARDS = 20  # per judge; older boards are deleted when a new one is published
RANK_METHOD = "spearman"


# --- the formulas ---------------------------------------------------------------------


def three_way(label: str) -> str:
    """A verdict as one of the three kappa categories (both bad is a tie)."""
    return "tie" if label in ("tie", "both_bad") else label


def two_way_agreement(pairs: Sequence[tuple[str, str]]) -> tuple[float | None, int]:
    """(share of equal picks, pairs counted) over (human, judge) verdicts
    where neither is a tie or both bad; None when no pair is left."""
    kept = [(h, j) for h, j in pairs if h in ("a", "b") and j in ("a", "b")]
    if not kept:
        return None, 0
    return sum(h == j for h, j in kept) / len(kept), len(kept)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> tuple[float | None, float | None, int]:
    """(kappa, observed agreement, pairs) over three categories A / B / tie.
    Kappa is None without pairs or when chance agreement is 1 (both raters
    used one and the same category throughout)."""
    labelled = [(three_way(h), three_way(j)) for h, j in pairs]
    n = len(labelled)
    if n == 0:
        return None, None, 0
    observed = sum(h == j for h, j in labelled) / n
    expected = sum((sum(h == k for h, _ in labelled) / n) * (sum(j == k for _, j in labelled) / n) for k in LABELS)
    if expected >= 1.0:
        return None, observed, n
    return (observed - expected) / (1.0 - expected), observed, n


def position_bias_rate(orders: Iterable[tuple[str, str]]) -> tuple[float | None, int]:
    """(share of judgings whose two orders disagree, judgings counted)."""
    orders = [(ab, ba) for ab, ba in orders if ab and ba]
    if not orders:
        return None, 0
    return sum(ab != ba for ab, ba in orders) / len(orders), len(orders)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values`` (1 = smallest), equal values sharing the mean of their ranks."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho; None for fewer than two items or a constant side."""
    if len(x) != len(y) or len(x) < 2:
        return None
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    if denom == 0.0:
        return None
    return float((rx * ry).sum() / denom)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


# --- reading the votes ------------------------------------------------------------------------


def done_votes(judge_id: int) -> list[dict]:
    return list(
        JudgeVote.objects.filter(judge_id=judge_id, status=JudgeVote.Status.DONE)
        .order_by("id")
        .values(
            "id", "battle_id", "question_id", "turns", "model_a_id", "model_b_id", "verdict", "verdict_ab", "verdict_ba"
        )  # fmt: skip
    )


def _flip(verdict: str) -> str:
    return {"a": "b", "b": "a"}.get(verdict, verdict)


def paired_verdicts(judge_votes: list[dict]) -> list[tuple[str, str]]:
    """(human, judge) verdicts, in the human vote's orientation, on every
    counted human vote of a battle the judge judged: the battle itself, or
    the same pre-generated answers judged before the vote."""
    by_battle = {v["battle_id"]: v for v in judge_votes if v["battle_id"] is not None}
    by_pair = {}
    for v in judge_votes:
        if v["battle_id"] is None:
            lo, hi = sorted((v["model_a_id"], v["model_b_id"]))
            by_pair[(v["question_id"], lo, hi, v["turns"])] = v
    pairs = []
    humans = Vote.objects.filter(excluded=False, battle__isnull=False).values_list(
        "battle_id", "battle__question_id", "model_a_id", "model_b_id", "winner", "turns"
    )
    for battle_id, question_id, a, b, winner, turns in humans.iterator(chunk_size=5000):
        jv = by_battle.get(battle_id)
        if jv is None and question_id is not None:
            jv = by_pair.get((question_id, min(a, b), max(a, b), turns))
        if jv is None:
            continue
        verdict = jv["verdict"] if jv["model_a_id"] == a else _flip(jv["verdict"])
        pairs.append((winner, verdict))
    return pairs


# --- the board ----------------------------------------------------------------------------------


def board_rows(judge_votes: list[dict]) -> tuple[list[dict], list[str]]:
    """BT with sandwich intervals over the judge's verdicts; rows in the
    snapshot views' shape."""
    if not judge_votes:
        return [], []
    ids = sorted({v["model_a_id"] for v in judge_votes} | {v["model_b_id"] for v in judge_votes})
    index = {mid: k for k, mid in enumerate(ids)}
    a = np.array([index[v["model_a_id"]] for v in judge_votes])
    b = np.array([index[v["model_b_id"]] for v in judge_votes])
    y = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[v["verdict"]] for v in judge_votes])
    pc = engine.aggregate(a, b, y, len(ids))
    names = [str(mid) for mid in ids]
    lb = engine.leaderboard(pc, names=names, ci="sandwich", simultaneous=True)
    # The snapshot views' rows, made as the recompute makes them (θ included).
    rows, _ = recompute.rows_of(lb, names, ids, lb.active)
    return rows, list(lb.warnings)


def human_overall_rows(snap: Snapshot | None) -> list[dict]:
    if snap is None:
        return []
    view = snap.views.filter(key="overall", style_control=False).defer("pairs").first()
    return list(view.rows) if view else []


def agreement_figures(judge_votes: list[dict], rows: list[dict], human_rows: list[dict]) -> dict:
    pairs = paired_verdicts(judge_votes)
    agree, agree_n = two_way_agreement(pairs)
    kappa, observed, kappa_n = cohen_kappa(pairs)
    bias, bias_n = position_bias_rate((v["verdict_ab"], v["verdict_ba"]) for v in judge_votes)
    human = {r["model_id"]: r["rating"] for r in human_rows if "model_id" in r}
    both = [r["model_id"] for r in rows if r["model_id"] in human]
    judge_rating = {r["model_id"]: r["rating"] for r in rows}
    rho = spearman([judge_rating[m] for m in both], [human[m] for m in both])
    return {
        "battles_judged": len(judge_votes),
        "both_voted": len(pairs),
        "agreement": _round(agree),
        "agreement_battles": agree_n,
        "three_way_agreement": _round(observed),
        "kappa": _round(kappa),
        "kappa_battles": kappa_n,
        "position_bias_rate": _round(bias),
        "position_bias_battles": bias_n,
        "rank_correlation": _round(rho),
        "rank_correlation_method": RANK_METHOD,
        "rank_correlation_models": len(both),
    }


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


def publish_board(judge: Judge, snap: Snapshot | None, human_summary: tuple) -> JudgeBoard | None:
    """Compute and store the judge's board unless its inputs are unchanged."""
    votes = done_votes(judge.id)
    ids = np.array([v["id"] for v in votes], dtype="<i8")
    fingerprint = hashlib.sha256(ids.tobytes()).hexdigest()
    key = _digest(fingerprint, human_summary, snap.id if snap else None)
    newest = JudgeBoard.objects.filter(judge=judge).only("inputs_key").first()
    if newest is not None and newest.inputs_key == key:
        return None
    rows, warnings = board_rows(votes)
    figures = agreement_figures(votes, rows, human_overall_rows(snap))
    with transaction.atomic():
        board = JudgeBoard.objects.create(
            judge=judge, vote_count=len(votes), fingerprint=fingerprint, inputs_key=key, human_snapshot=snap,
            rows=rows, agreement=figures, warnings=warnings,
        )  # fmt: skip
        old = list(JudgeBoard.objects.filter(judge=judge).values_list("id", flat=True)[KEEP_BOARDS:])
        if old:
            JudgeBoard.objects.filter(id__in=old).delete()
    return board


def publish_boards() -> int:
    """Every judge's board (paused judges too: their votes stay), each only
    when its inputs changed. Returns how many were published."""
    from .selectors import newest_snapshot

    judges = list(Judge.objects.all())
    if not judges:
        return 0
    snap = newest_snapshot()
    agg = Vote.objects.filter(excluded=False).aggregate(c=Count("id"), m=Max("id"), s=Sum("id"))
    human_summary = (agg["c"] or 0, agg["m"] or 0, agg["s"] or 0)
    published = 0
    for judge in judges:
        try:
            if publish_board(judge, snap, human_summary) is not None:
                published += 1
        except Exception:  # one judge's bad data must not stop the others' boards
            log.exception("judge board of %s failed", judge.name)
    return published


# --- reading the boards ----------------------------------------------------------------------------


def newest_board(judge_id: int) -> JudgeBoard | None:
    return JudgeBoard.objects.filter(judge_id=judge_id).first()


def parse_source(raw: str | None) -> str | None:
    """The judge name of ``judge:NAME``; None for human (or absent). Raises
    ValueError for anything else."""
    if raw is None or raw == SOURCE_HUMAN:
        return None
    if raw.startswith(SOURCE_PREFIX) and len(raw) > len(SOURCE_PREFIX):
        return raw[len(SOURCE_PREFIX) :]
    raise ValueError(f"source must be human or judge:NAME, not {raw[:80]!r}")


def cold_start_rows(human_rows: list[dict], reg) -> list[dict]:
    """Models short of RATINGS_MIN_VOTES human votes (or absent from the
    human board) that a judge has rated: the judge's rating, marked as
    such. The judge: among active judges with a board, the one with the
    highest kappa against people (then the most judged battles, then name)."""
    from .selectors import min_votes

    floor = min_votes()
    human_battles = {r.get("model_id"): r.get("battles", 0) for r in human_rows}
    boards = []
    for judge in Judge.objects.filter(status=Judge.Status.ACTIVE):
        board = newest_board(judge.id)
        if board is not None and board.rows:
            boards.append((judge, board))
    if not boards:
        return []
    judge, board = max(
        boards,
        key=lambda jb: (jb[1].agreement.get("kappa") if jb[1].agreement.get("kappa") is not None else -2.0,
                        jb[1].vote_count, jb[0].name),
    )  # fmt: skip
    out = []
    for r in board.rows:
        mid = r["model_id"]
        humans = human_battles.get(mid, 0)
        info = reg.models.get(mid)
        if humans >= floor or info is None or info["status"] == "deprecated":
            continue
        out.append({
            **info, "model_id": mid, "source": SOURCE_PREFIX + judge.name, "judge": judge.name,
            "rating": r["rating"], "lower": r["lower"], "upper": r["upper"], "judge_battles": r["battles"],
            "human_battles": humans,
        })  # fmt: skip
    out.sort(key=lambda r: (-r["rating"], r["model"]))
    return out
