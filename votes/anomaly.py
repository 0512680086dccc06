"""Anomalous voter detection (Chiang et al. 2024, section 5; docs/VOTES.md).

Two layers:

- ``detect()`` and the functions above it are pure numpy: integer-indexed
  arrays in, arrays out, no Django. ``bench/bench_anomaly.py`` and the tests
  call them on simulated arenas.
- ``run_detection()``, ``flag_voter()``, ``unflag_voter()`` are the thin
  database layer: load the votes aggregated in SQL, call ``detect()``, store
  each voter's score, and exclude (or reinstate) the votes of flagged voters.

The method, per voter u with at least ``min_votes`` votes:

1. Consensus. For each unordered model pair, the counts of (first model won,
   second model won, tie) over everyone's votes *except u's own* and except
   voters currently flagged, shrunk towards the global outcome mix by
   ``prior_strength`` pseudo-votes. Ties and both-bad are one outcome.
2. Outcome test. For each of u's votes, the p-value of the outcome under that
   consensus: the probability of an outcome no more likely than the one
   observed. The outcome is discrete, so this p-value is randomised
   (p = L + U·E, L = mass of strictly less likely outcomes, E = mass of
   equally likely ones, U uniform) and its Fisher term −2 log p is replaced by
   its expectation over U. Each term then has mean exactly 2 under the null,
   like −2 log of a uniform p-value, with a smaller variance, so Fisher's
   M = Σ terms compared with χ² on 2j degrees of freedom is calibrated (a
   little conservative) and deterministic.
3. Side test. A voter who always clicks A (or B) is invisible to step 2 when
   sides are shuffled: half the time A is the favourite. Among u's decisive
   votes, the number of A choices is Poisson-binomial with per-vote
   probabilities from the consensus (plus the population's overall A/B lean);
   two-sided exact tail (normal approximation above ``EXACT_SIDE_MAX`` votes).
4. Favouritism test. A voter who only votes when one model is on screen, and
   always for it (or against it), moves that model and little else; spread
   over all their votes the evidence is diluted. For each model the voter
   met (≥ FAVOUR_MIN_VOTES times), the points it scored in their votes
   (loss 0, tie ½, win 1) against the consensus distribution, exact by
   convolution, two-sided, with a tolerance: honest voters have tastes, so
   the null lets the voter like or dislike the model by up to
   ``FAVOUR_TOLERANCE`` natural-log odds. Bonferroni over the models met.
5. Combination. p_u = min(1, 3·min(p_outcome, p_side, p_favour)) (Bonferroni
   over the three tests), then Holm's step-down over all tested voters;
   flagged when the adjusted p-value ≤ ``alpha``. Holm controls the
   family-wise error: the chance of flagging even one honest voter in a run
   is ≤ alpha when the model of honest voting holds.
6. Flagged voters leave the consensus and the detection runs again, until
   the flagged set stops changing (at most ``max_rounds`` times).

Only votes on pairs that at least ``MIN_PAIR_CONSENSUS`` other (unflagged)
votes cover are judged: where there is no consensus there is nothing to
deviate from (a voter who dominates a pair is not judged on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.01  # family-wise error rate per run (Holm over tested voters)
RELEASE_ALPHA = 0.1  # a detector flag is lifted only when the adjusted p-value rises above this
MIN_VOTES = 20  # voters with fewer judged votes are not tested
MIN_PAIR_CONSENSUS = 10  # a vote is judged only when other voters cast this many on its pair
PRIOR_STRENGTH = 2.0  # pseudo-votes shrinking each pair's consensus towards the global outcome mix
# Honest voters have tastes: liking a model up to this much more (or less) than
# the consensus, in natural-log odds (1.0 ≈ 174 rating points), is not evidence.
FAVOUR_TOLERANCE = 1.0
FAVOUR_MIN_VOTES = 3  # a (voter, model) pair is tested for favouritism from this many votes
EXACT_SIDE_MAX = 5000  # exact Poisson-binomial up to this many decisive votes per voter
MAX_ROUNDS = 5
P_FLOOR = 1e-300  # p-values are clipped here so that scores (−log10 p) stay finite

OUTCOME_A, OUTCOME_B, OUTCOME_TIE = 0, 1, 2
WINNER_OUTCOME = {"a": OUTCOME_A, "b": OUTCOME_B, "tie": OUTCOME_TIE, "both_bad": OUTCOME_TIE}


# --------------------------------------------------------------------------
# distributions (numpy and math only)


def chi2_logsf_even(x: np.ndarray | float, dof: np.ndarray | int) -> np.ndarray:
    """log P(χ²_dof > x) for even dof = 2j, exactly:

    sf(x; 2j) = exp(−x/2) · Σ_{k<j} (x/2)^k / k!   (the Poisson(x/2) cdf at j−1),

    summed in log space (log-sum-exp), so it neither overflows nor underflows
    for large j or x. Vectorised over x and dof (broadcast together).
    """
    x, dof = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(dof))
    out = np.zeros(x.shape)
    flat_x, flat_d, flat_o = x.ravel(), dof.ravel(), out.ravel()
    if np.any(flat_d % 2) or np.any(flat_d < 2):
        raise ValueError("dof must be a positive even integer")
    jmax = int(flat_d.max(initial=2)) // 2
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, jmax + 1)))])
    for i, (xi, di) in enumerate(zip(flat_x, flat_d, strict=True)):
        if xi <= 0:
            flat_o[i] = 0.0
            continue
        j = int(di) // 2
        half = xi / 2.0
        k = np.arange(j)
        terms = k * math.log(half) - log_fact[:j]
        top = terms.max()
        flat_o[i] = min(0.0, -half + top + math.log(np.exp(terms - top).sum()))
    return out


def fisher_term(lower: np.ndarray, equal: np.ndarray) -> np.ndarray:
    """E_U[−2 log(L + U·E)] for U ~ Uniform(0, 1): the expected Fisher term
    of a randomised discrete p-value. L = probability of strictly less likely
    outcomes, E = probability of the equally likely ones (E > 0).

    = 2 − 2·[(L+E)·log(L+E) − L·log L] / E, with 0·log 0 = 0.
    """
    lower = np.asarray(lower, dtype=float)
    equal = np.maximum(np.asarray(equal, dtype=float), 1e-300)
    upper = lower + equal
    xlogx_u = np.where(upper > 0, upper * np.log(np.maximum(upper, 1e-300)), 0.0)
    xlogx_l = np.where(lower > 0, lower * np.log(np.maximum(lower, 1e-300)), 0.0)
    return 2.0 - 2.0 * (xlogx_u - xlogx_l) / equal


def poisson_binomial_two_sided(q: np.ndarray, x: int) -> float:
    """Two-sided p-value of x successes among independent Bernoulli(q_i):
    min(1, 2·min(P(X ≥ x), P(X ≤ x))). Exact up to EXACT_SIDE_MAX trials,
    normal approximation with continuity correction beyond."""
    q = np.asarray(q, dtype=float)
    n = len(q)
    if n == 0:
        return 1.0
    if n > EXACT_SIDE_MAX:
        mu = float(q.sum())
        sd = math.sqrt(max(float((q * (1 - q)).sum()), 1e-12))
        z = (abs(x - mu) - 0.5) / sd
        return 1.0 if z <= 0 else min(1.0, math.erfc(z / math.sqrt(2.0)))
    pmf = np.zeros(n + 1)
    pmf[0] = 1.0
    for i, qi in enumerate(q):
        # Right-hand side is evaluated before the assignment, so this is the
        # convolution with Bernoulli(qi) over the first i + 2 entries.
        pmf[1 : i + 2] = pmf[1 : i + 2] * (1.0 - qi) + pmf[0 : i + 1] * qi
        pmf[0] *= 1.0 - qi
    upper = float(pmf[x:].sum())
    lower = float(pmf[: x + 1].sum())
    return min(1.0, 2.0 * min(upper, lower))


def _score_pmf(dists: np.ndarray) -> np.ndarray:
    """pmf of a sum of independent scores in {0, 1, 2}; row i of ``dists``
    holds P(0), P(1), P(2). Exact, by convolution."""
    n = len(dists)
    pmf = np.zeros(2 * n + 1)
    pmf[0] = 1.0
    for i, (p0, p1, p2) in enumerate(dists):
        top = 2 * i + 1  # support so far is 0 .. 2i
        new = pmf[: top + 2] * p0
        new[1 : top + 2] += pmf[: top + 1] * p1
        new[2 : top + 2] += pmf[:top] * p2
        pmf[: top + 2] = new
    return pmf


def tilt(dists: np.ndarray, delta: float) -> np.ndarray:
    """Multiply the win/loss odds of each (P(loss), P(tie), P(win)) row by
    e^delta, keeping P(tie): the model judged delta natural-log units stronger."""
    loss, tie, win = dists[:, 0], dists[:, 1], dists[:, 2]
    decisive = loss + win
    w = win * math.exp(delta)
    share = np.where(decisive > 0, w / np.maximum(w + loss, 1e-300), 0.5)
    return np.stack([decisive * (1 - share), tie, decisive * share], axis=1)


def score_sum_two_sided(dists: np.ndarray, observed: int, tolerance: float = 0.0) -> float:
    """Two-sided p-value of a model's points (half points: loss 0, tie 1,
    win 2) summed over votes with the given per-vote distributions.

    ``tolerance`` (natural-log odds) widens the null: the voter may like or
    dislike the model by up to that much, so the upper tail is taken with the
    model tilted ``+tolerance`` and the lower tail with it tilted ``-tolerance``.
    min(1, 2·min(P₊(S ≥ observed), P₋(S ≤ observed)))."""
    if len(dists) == 0:
        return 1.0
    up = _score_pmf(tilt(dists, tolerance) if tolerance else dists)
    down = _score_pmf(tilt(dists, -tolerance)) if tolerance else up
    return min(1.0, 2.0 * min(float(up[observed:].sum()), float(down[: observed + 1].sum())))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


# --------------------------------------------------------------------------
# detection on arrays


@dataclass
class Detection:
    """Per-voter results, arrays of length ``n_voters``. Untested voters have
    NaN statistics and p-values of 1."""

    tested: np.ndarray
    votes: np.ndarray
    fisher: np.ndarray
    outcome_p: np.ndarray
    side_p: np.ndarray
    favour_p: np.ndarray
    p: np.ndarray
    adjusted_p: np.ndarray
    flagged: np.ndarray
    rounds: int
    side_logit: float

    @property
    def score(self) -> np.ndarray:
        """−log10 of the adjusted p-value, capped at 300."""
        return -np.log10(np.clip(self.adjusted_p, P_FLOOR, 1.0))


def _test_voters(v, model_a, model_b, pair, lo_first, out_lo, count, n_voters, n_pairs, consensus, testable,
                 prior_strength, min_votes, min_pair_consensus, favour_tolerance):  # fmt: skip
    """Outcome, side and favouritism p-values of the testable voters against
    a consensus of the voters in ``consensus`` (each voter's own votes left out)."""
    w_cons = count * consensus[v]
    cons = np.zeros((n_pairs, 3))
    np.add.at(cons, (pair, out_lo), w_cons)
    total = cons.sum()
    tie_share = cons[:, 2].sum() / total if total > 0 else 1.0 / 3.0
    tie_share = min(max(tie_share, 0.01), 0.98)
    prior = np.array([(1 - tie_share) / 2, (1 - tie_share) / 2, tie_share])

    # Leave-one-voter-out: subtract the voter's own counts on the pair.
    vp_key = v.astype(np.int64) * n_pairs + pair
    uniq, vp = np.unique(vp_key, return_inverse=True)
    own = np.zeros((len(uniq), 3))
    np.add.at(own, (vp, out_lo), w_cons)
    loo = cons[pair] - own[vp]
    probs = (loo + prior_strength * prior) / (loo.sum(axis=1, keepdims=True) + prior_strength)
    # A vote is judged only against a consensus that exists: on a pair that
    # other voters rarely saw (or that this voter dominates) there is none.
    judged = loo.sum(axis=1) >= min_pair_consensus - 1e-9
    count = count * judged

    # (1) outcome p-values, as expected Fisher terms
    p_obs = probs[np.arange(len(v)), out_lo]
    tol = 1e-12
    less = np.where(probs < p_obs[:, None] - tol, probs, 0.0).sum(axis=1)
    equal = np.where(np.abs(probs - p_obs[:, None]) <= tol, probs, 0.0).sum(axis=1)
    terms = fisher_term(less, equal)
    n_votes = np.bincount(v, weights=count, minlength=n_voters)
    fisher = np.bincount(v, weights=count * terms, minlength=n_voters)

    # (2) side choices among decisive votes: P(side a wins | decisive)
    p_side_a = np.where(lo_first, probs[:, 0], probs[:, 1])
    p_side_b = np.where(lo_first, probs[:, 1], probs[:, 0])
    decisive = (out_lo != OUTCOME_TIE) & judged
    chose_a = np.where(lo_first, out_lo == 0, out_lo == 1) & decisive
    base_logit = np.log(p_side_a) - np.log(p_side_b)
    # The population's own A/B lean (position bias), fitted on the consensus voters.
    m = decisive & consensus[v]
    side_logit = 0.0
    if m.any():
        c, lg, ya = count[m], base_logit[m], (count * chose_a)[m].sum()
        for _ in range(30):
            pr = 1.0 / (1.0 + np.exp(-(lg + side_logit)))
            grad = (c * pr).sum() - ya
            hess = (c * pr * (1 - pr)).sum()
            if hess <= 0:
                break
            step = grad / hess
            side_logit = float(np.clip(side_logit - step, -5.0, 5.0))
            if abs(step) < 1e-10:
                break
    q = 1.0 / (1.0 + np.exp(-(base_logit + side_logit)))

    outcome_p = np.ones(n_voters)
    side_p = np.ones(n_voters)
    tested = testable & (n_votes >= max(1, min_votes))
    for u in np.flatnonzero(tested):
        outcome_p[u] = math.exp(float(chi2_logsf_even(fisher[u], 2 * int(round(n_votes[u])))))
    # Group decisive rows by voter, expanding multiplicities (aggregated input).
    rows = np.flatnonzero(decisive & tested[v])
    if len(rows):
        order = rows[np.argsort(v[rows], kind="stable")]
        reps = np.rint(count[order]).astype(np.int64)
        vv = np.repeat(v[order], reps)
        qq = np.repeat(q[order], reps)
        aa = np.repeat(chose_a[order], reps)
        starts = np.flatnonzero(np.r_[True, vv[1:] != vv[:-1]])
        ends = np.r_[starts[1:], len(vv)]
        for s, e in zip(starts, ends, strict=True):
            side_p[vv[s]] = poisson_binomial_two_sided(qq[s:e], int(aa[s:e].sum()))

    # (3) favouritism: for each model the voter met, the points it scored in
    # their votes against the consensus distribution; Bonferroni over models.
    favour_p = np.ones(n_voters)
    rows = np.flatnonzero(tested[v] & judged)
    if len(rows):
        # Each vote twice: once for side a's model, once for side b's. P(points) for side a's model:
        pa = np.stack([p_side_b, probs[:, 2], p_side_a], axis=1)[rows]
        pts_a = np.where(out_lo[rows] == OUTCOME_TIE, 1, np.where(chose_a[rows], 2, 0))
        vv = np.r_[v[rows], v[rows]]
        mm = np.r_[model_a[rows], model_b[rows]]
        dist = np.r_[pa, pa[:, ::-1]]
        pts = np.r_[pts_a, 2 - pts_a]
        reps = np.rint(np.r_[count[rows], count[rows]]).astype(np.int64)
        vv, mm, pts = np.repeat(vv, reps), np.repeat(mm, reps), np.repeat(pts, reps)
        dist = np.repeat(dist, reps, axis=0)
        order = np.lexsort((mm, vv))
        vv, mm, dist, pts = vv[order], mm[order], dist[order], pts[order]
        starts = np.flatnonzero(np.r_[True, (vv[1:] != vv[:-1]) | (mm[1:] != mm[:-1])])
        ends = np.r_[starts[1:], len(vv)]
        best = np.ones(n_voters)
        models_met = np.zeros(n_voters)
        for s, e in zip(starts, ends, strict=True):
            u = vv[s]
            models_met[u] += 1
            if e - s >= FAVOUR_MIN_VOTES:
                best[u] = min(best[u], score_sum_two_sided(dist[s:e], int(pts[s:e].sum()), favour_tolerance))
        favour_p = np.minimum(1.0, best * np.maximum(models_met, 1))
    return (tested, n_votes, fisher, np.maximum(outcome_p, P_FLOOR), np.maximum(side_p, P_FLOOR),
            np.maximum(favour_p, P_FLOOR), side_logit)  # fmt: skip


def detect(
    voter: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    outcome: np.ndarray,
    *,
    n_voters: int,
    count: np.ndarray | None = None,
    testable: np.ndarray | None = None,
    distrusted: np.ndarray | None = None,
    exempt: np.ndarray | None = None,
    alpha: float = ALPHA,
    min_votes: int = MIN_VOTES,
    min_pair_consensus: int = MIN_PAIR_CONSENSUS,
    favour_tolerance: float = FAVOUR_TOLERANCE,
    prior_strength: float = PRIOR_STRENGTH,
    max_rounds: int = MAX_ROUNDS,
) -> Detection:
    """Flag anomalous voters.

    Rows are votes (or groups of identical votes, with ``count``): voter index
    in [0, n_voters), model indices, outcome OUTCOME_A / OUTCOME_B / OUTCOME_TIE
    from side a's point of view. Self-battles are ignored.

    ``testable``: voters that may be tested at all (default: everyone; shared
    pseudo-voters such as ``import:unknown`` should be False). Voters with
    fewer than ``min_votes`` votes are never tested.
    ``distrusted``: voters kept out of the consensus from the start (flagged
    by a person). ``exempt``: voters tested and scored but never flagged
    (cleared by a person); they stay in the consensus.
    """
    v = np.asarray(voter, dtype=np.int64)
    a = np.asarray(model_a, dtype=np.int64)
    b = np.asarray(model_b, dtype=np.int64)
    o = np.asarray(outcome, dtype=np.int64)
    c = np.ones(len(v)) if count is None else np.asarray(count, dtype=float)
    keep = a != b
    v, a, b, o, c = v[keep], a[keep], b[keep], o[keep], c[keep]
    if len(o) and (o.min() < 0 or o.max() > 2):
        raise ValueError("outcome must be 0 (a won), 1 (b won) or 2 (tie)")
    testable = np.ones(n_voters, bool) if testable is None else np.asarray(testable, bool).copy()
    distrusted = np.zeros(n_voters, bool) if distrusted is None else np.asarray(distrusted, bool)
    exempt = np.zeros(n_voters, bool) if exempt is None else np.asarray(exempt, bool)

    lo, hi = np.minimum(a, b), np.maximum(a, b)
    n_models = int(hi.max()) + 1 if len(hi) else 1
    pairs, pair = np.unique(lo * n_models + hi, return_inverse=True)
    lo_first = a == lo
    # outcome from the pair's first (lower-index) model: 0 lo won, 1 hi won, 2 tie
    out_lo = np.where(o == OUTCOME_TIE, 2, np.where((o == OUTCOME_A) == lo_first, 0, 1))

    flagged = distrusted.copy()
    result = None
    rounds = 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - the rounds run are reported after the loop
        consensus = ~flagged
        tested, n_votes, fisher, out_p, side_p, fav_p, side_logit = _test_voters(
            v, a, b, pair, lo_first, out_lo, c, n_voters, len(pairs), consensus, testable, prior_strength,
            min_votes, min_pair_consensus, favour_tolerance,
        )  # fmt: skip
        p = np.ones(n_voters)
        p[tested] = np.minimum(1.0, 3.0 * np.minimum(np.minimum(out_p[tested], side_p[tested]), fav_p[tested]))
        adjusted = np.ones(n_voters)
        adjusted[tested] = holm(p[tested])
        new_flagged = distrusted | (tested & ~exempt & (adjusted <= alpha))
        result = (tested, n_votes, fisher, out_p, side_p, fav_p, p, adjusted, side_logit)
        if np.array_equal(new_flagged, flagged):
            break
        flagged = new_flagged
    tested, n_votes, fisher, out_p, side_p, fav_p, p, adjusted, side_logit = result
    fisher = np.where(tested, fisher, np.nan)
    return Detection(
        tested=tested, votes=n_votes, fisher=fisher, outcome_p=np.where(tested, out_p, 1.0),
        side_p=np.where(tested, side_p, 1.0), favour_p=np.where(tested, fav_p, 1.0), p=p, adjusted_p=adjusted,
        flagged=flagged, rounds=rounds, side_logit=side_logit,
    )  # fmt: skip


# --------------------------------------------------------------------------
# database layer


@dataclass
class DetectionReport:
    voters_tested: int
    flagged: list[int]
    newly_flagged: list[int]
    released: list[int]
    votes_excluded: int
    votes_reinstated: int
    rounds: int

    def as_dict(self) -> dict:
        return {
            "voters_tested": self.voters_tested,
            "flagged": len(self.flagged),
            "newly_flagged": self.newly_flagged,
            "released": self.released,
            "votes_excluded": self.votes_excluded,
            "votes_reinstated": self.votes_reinstated,
            "rounds": self.rounds,
        }


def _exclude_votes(voter_ids, *, by, now) -> int:
    """Exclude the counted votes of these voters as ``anomalous_voter``
    (votes.moderation records one event per vote and asks for a recompute
    after commit). Caller holds the transaction."""
    from .models import ExclusionReason, Vote
    from .moderation import exclude_votes

    votes = Vote.objects.filter(voter_id__in=list(voter_ids), excluded=False)
    return len(exclude_votes(votes, reason=ExclusionReason.ANOMALOUS_VOTER, by=by, now=now, system=True))


def _reinstate_votes(voter_ids, *, by, now) -> int:
    """Reinstate exactly the votes excluded because their voter was flagged;
    votes excluded for any other reason stay excluded."""
    from .models import ExclusionReason, Vote
    from .moderation import reinstate_votes

    reason = ExclusionReason.ANOMALOUS_VOTER
    votes = Vote.objects.filter(voter_id__in=list(voter_ids), excluded=True, exclusion_reason=reason)
    return len(reinstate_votes(votes, reason=reason, by=by, now=now, only_reason=reason))


def flag_voter(voter_id: int, *, by=None, manual: bool = True) -> int:
    """Flag a voter and exclude their counted votes (reason ``anomalous_voter``).

    ``by``: the staff user deciding (None = the system). A manual decision
    stands against later detector runs. Returns the number of votes excluded.
    Harmless twice.
    """
    from django.db import transaction
    from django.utils import timezone

    from .models import VoterFlag

    now = timezone.now()
    with transaction.atomic():
        flag, _ = VoterFlag.objects.select_for_update().get_or_create(voter_id=voter_id)
        if not flag.flagged or manual != flag.manual:
            flag.flagged, flag.manual = True, manual
            flag.changed_at, flag.changed_by = now, by
            flag.save(update_fields=["flagged", "manual", "changed_at", "changed_by"])
        return _exclude_votes([voter_id], by=by, now=now)


def unflag_voter(voter_id: int, *, by=None, manual: bool = True) -> int:
    """Clear a voter's flag and reinstate exactly the votes it excluded.
    Returns the number of votes reinstated. Harmless twice."""
    from django.db import transaction
    from django.utils import timezone

    from .models import VoterFlag

    now = timezone.now()
    with transaction.atomic():
        flag, _ = VoterFlag.objects.select_for_update().get_or_create(voter_id=voter_id)
        if flag.flagged or manual != flag.manual:
            flag.flagged, flag.manual = False, manual
            flag.changed_at, flag.changed_by = now, by
            flag.save(update_fields=["flagged", "manual", "changed_at", "changed_by"])
        return _reinstate_votes([voter_id], by=by, now=now)


def run_detection(*, alpha: float | None = None, min_votes: int | None = None) -> DetectionReport:
    """Score every voter against the current votes, store the scores, and
    apply the detector's flags (never overriding a person's decision).

    Votes considered: counted ones plus those excluded only because their
    voter is flagged (the flag is what is being re-examined). Shared
    pseudo-voters (``import:unknown``) are never tested.
    """
    from django.conf import settings
    from django.db import transaction
    from django.db.models import Count, Q
    from django.utils import timezone

    from arena.models import Voter

    from .importers import SHARED_VOTER_KEY
    from .models import ExclusionReason, Vote, VoterFlag

    # The defaults (ALPHA, MIN_VOTES, RELEASE_ALPHA) are the settings' defaults too.
    alpha = settings.VOTES_ANOMALY_ALPHA if alpha is None else alpha
    min_votes = settings.VOTES_ANOMALY_MIN_VOTES if min_votes is None else min_votes
    release = max(alpha, settings.VOTES_ANOMALY_RELEASE_ALPHA)
    now = timezone.now()

    eligible = Vote.objects.filter(Q(excluded=False) | Q(exclusion_reason=ExclusionReason.ANOMALOUS_VOTER))
    rows = list(
        eligible.values_list("voter_id", "model_a_id", "model_b_id", "winner").annotate(n=Count("id")).order_by()
    )
    voter_ids = sorted({r[0] for r in rows})
    vindex = {vid: i for i, vid in enumerate(voter_ids)}
    model_ids = sorted({r[1] for r in rows} | {r[2] for r in rows})
    mindex = {mid: i for i, mid in enumerate(model_ids)}
    nv = len(voter_ids)
    v = np.fromiter((vindex[r[0]] for r in rows), np.int64, len(rows))
    a = np.fromiter((mindex[r[1]] for r in rows), np.int64, len(rows))
    b = np.fromiter((mindex[r[2]] for r in rows), np.int64, len(rows))
    o = np.fromiter((WINNER_OUTCOME[r[3]] for r in rows), np.int64, len(rows))
    c = np.fromiter((r[4] for r in rows), float, len(rows))

    flags = {f.voter_id: f for f in VoterFlag.objects.filter(voter_id__in=voter_ids)}
    testable = np.ones(nv, bool)
    shared = set(Voter.objects.filter(key=SHARED_VOTER_KEY).values_list("id", flat=True))
    distrusted = np.zeros(nv, bool)
    exempt = np.zeros(nv, bool)
    previously = np.zeros(nv, bool)
    for vid, i in vindex.items():
        if vid in shared:
            testable[i] = False
        f = flags.get(vid)
        if f is not None:
            previously[i] = f.flagged
            if f.manual:
                distrusted[i] = f.flagged
                exempt[i] = not f.flagged
    det = detect(
        v, a, b, o, n_voters=nv, count=c, testable=testable, distrusted=distrusted, exempt=exempt,
        alpha=alpha, min_votes=min_votes,
    )  # fmt: skip
    manual = np.array([bool(flags.get(vid) and flags[vid].manual) for vid in voter_ids], bool)
    # Hysteresis: a detector flag is lifted only once the evidence is clearly gone.
    auto_flag = det.flagged & ~manual
    keep_flag = previously & ~manual & ~det.flagged & (det.adjusted_p <= release) & det.tested
    now_flagged = np.where(manual, previously, auto_flag | keep_flag)
    newly = [voter_ids[i] for i in np.flatnonzero(now_flagged & ~previously)]
    released = [voter_ids[i] for i in np.flatnonzero(previously & ~now_flagged)]

    score = det.score
    with transaction.atomic():
        upserts = []
        for i in np.flatnonzero(det.tested | previously):
            vid = voter_ids[i]
            upserts.append(
                VoterFlag(
                    voter_id=vid,
                    votes_tested=int(det.votes[i]),
                    fisher_statistic=float(np.nan_to_num(det.fisher[i])),
                    outcome_p=float(det.outcome_p[i]),
                    side_p=float(det.side_p[i]),
                    favour_p=float(det.favour_p[i]),
                    p_value=float(det.p[i]),
                    adjusted_p=float(min(1.0, max(0.0, det.adjusted_p[i]))),
                    score=float(min(300.0, score[i])),
                    scored_at=now,
                    # a new row starts clear; flags change only below, where who/when is recorded
                    flagged=False,
                    manual=False,
                )
            )
        VoterFlag.objects.bulk_create(
            upserts, batch_size=1000, update_conflicts=True, unique_fields=["voter"],
            update_fields=["votes_tested", "fisher_statistic", "outcome_p", "side_p", "favour_p", "p_value",
                           "adjusted_p", "score", "scored_at"],
        )  # fmt: skip
        # manual=False: a person who decided meanwhile wins over this run.
        auto = VoterFlag.objects.select_for_update().filter(manual=False)
        newly = list(auto.filter(voter_id__in=newly, flagged=False).values_list("voter_id", flat=True))
        released = list(auto.filter(voter_id__in=released, flagged=True).values_list("voter_id", flat=True))
        VoterFlag.objects.filter(voter_id__in=newly).update(flagged=True, changed_at=now, changed_by=None)
        VoterFlag.objects.filter(voter_id__in=released).update(flagged=False, changed_at=now, changed_by=None)
        # Every flagged voter's counted votes, including any cast since the flag.
        flagged_ids = list(VoterFlag.objects.filter(flagged=True).values_list("voter_id", flat=True))
        excluded = _exclude_votes(flagged_ids, by=None, now=now) if flagged_ids else 0
        reinstated = _reinstate_votes(released, by=None, now=now) if released else 0
    return DetectionReport(
        voters_tested=int(det.tested.sum()), flagged=flagged_ids, newly_flagged=newly, released=released,
        votes_excluded=excluded, votes_reinstated=reinstated, rounds=det.rounds,
    )  # fmt: skip
