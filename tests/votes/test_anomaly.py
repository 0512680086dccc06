"""Anomalous voter detection: the distributions against published values, the
detector on a simulated arena (50 honest voters, 3 adversaries), and the
database layer: flags, exclusions, reinstatement, the periodic task."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from votes import anomaly

# --------------------------------------------------------------------------
# a simulated arena (also used by bench/bench_anomaly.py)

ADVERSARIES = ("always_a", "against_leader", "for_weak_model")


@dataclass
class SimulatedArena:
    voter: np.ndarray  # voter index per vote
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray  # anomaly.OUTCOME_A / OUTCOME_B / OUTCOME_TIE, from side a
    n_voters: int
    n_models: int
    honest: list[int]
    adversaries: dict[str, int]  # kind -> voter index
    leader: int
    target: int


def simulate_arena(
    seed: int,
    *,
    n_models: int = 12,
    n_honest: int = 50,
    honest_votes: tuple[int, int] = (30, 120),
    adversary_votes: int = 40,
    tie_rate: float = 0.3,
    strength_sd: float = 0.8,
    taste_sd: float = 0.3,
) -> SimulatedArena:
    """Honest voters: Bradley–Terry on hidden strengths θ ~ N(0, strength_sd),
    each voter with a personal taste θ + N(0, taste_sd) and a tie rate around
    ``tie_rate``; random pairs, random sides. Adversaries (``adversary_votes``
    each): always picks side A on random battles; on battles with the
    strongest model, always votes against it; on battles with a weak model
    (bottom quarter), always votes for it. The last two only vote when their
    target is on screen, as a rigging voter would (re-rolling other battles).
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, strength_sd, n_models)
    leader = int(np.argmax(theta))
    target = int(np.argsort(theta)[n_models // 4])
    v, a, b, o = [], [], [], []

    def add(u, ma, mb, out):
        v.append(u), a.append(int(ma)), b.append(int(mb)), o.append(out)

    for u in range(n_honest):
        taste = theta + rng.normal(0.0, taste_sd, n_models)
        ties = float(np.clip(rng.normal(tie_rate, 0.05), 0.05, 0.6))
        for _ in range(int(rng.integers(honest_votes[0], honest_votes[1] + 1))):
            ma, mb = rng.choice(n_models, 2, replace=False)
            if rng.random() < ties:
                add(u, ma, mb, anomaly.OUTCOME_TIE)
            else:
                p_a = 1.0 / (1.0 + math.exp(-(taste[ma] - taste[mb])))
                add(u, ma, mb, anomaly.OUTCOME_A if rng.random() < p_a else anomaly.OUTCOME_B)
    adversaries = {kind: n_honest + i for i, kind in enumerate(ADVERSARIES)}
    for _ in range(adversary_votes):
        ma, mb = rng.choice(n_models, 2, replace=False)
        add(adversaries["always_a"], ma, mb, anomaly.OUTCOME_A)
    for kind, model, win in (("against_leader", leader, False), ("for_weak_model", target, True)):
        others = [m for m in range(n_models) if m != model]
        for _ in range(adversary_votes):
            opp = rng.choice(others)
            if rng.random() < 0.5:  # the target on side a
                add(adversaries[kind], model, opp, anomaly.OUTCOME_A if win else anomaly.OUTCOME_B)
            else:
                add(adversaries[kind], opp, model, anomaly.OUTCOME_B if win else anomaly.OUTCOME_A)
    return SimulatedArena(
        np.array(v), np.array(a), np.array(b), np.array(o), n_honest + len(ADVERSARIES), n_models,
        list(range(n_honest)), adversaries, leader, target,
    )  # fmt: skip


SEED = 7


# --------------------------------------------------------------------------
# distributions


@pytest.mark.parametrize(
    ("x", "dof", "p"),
    [  # upper critical values of χ² (NIST/SEMATECH e-Handbook, table 1.3.6.7.4)
        (5.991, 2, 0.05), (9.210, 2, 0.01), (18.307, 10, 0.05), (23.209, 10, 0.01),
        (31.410, 20, 0.05), (37.566, 20, 0.01), (124.342, 100, 0.05), (135.807, 100, 0.01),
    ],
)  # fmt: skip
def test_chi2_survival_matches_published_critical_values(x, dof, p):
    assert math.exp(anomaly.chi2_logsf_even(x, dof)) == pytest.approx(p, rel=2e-3)


def test_chi2_survival_is_finite_far_in_both_tails():
    # dof 2: sf = exp(-x/2) exactly, also where exp underflows
    assert anomaly.chi2_logsf_even(2000.0, 2) == pytest.approx(-1000.0)
    big = anomaly.chi2_logsf_even(np.array([1.0, 40_000.0, 60_000.0]), 40_000)
    assert np.all(np.isfinite(big))
    assert big[0] == pytest.approx(0.0, abs=1e-12)  # far below the mean: sf = 1
    assert -1.0 < big[1] < 0.0  # at the mean: sf about one half
    assert big[2] < -1000.0  # far above: tiny, still a number


def test_expected_fisher_term_has_the_uniform_mean_under_the_null():
    rng = np.random.default_rng(0)
    for _ in range(200):
        probs = rng.dirichlet([1, 1, 1])
        if rng.random() < 0.3:
            probs = np.array([0.4, 0.4, 0.2])  # ties in probability
        mean = 0.0
        for obs in range(3):
            less = probs[probs < probs[obs] - 1e-12].sum()
            equal = probs[np.abs(probs - probs[obs]) <= 1e-12].sum()
            mean += probs[obs] * anomaly.fisher_term(less, equal)
        assert mean == pytest.approx(2.0, abs=1e-9)  # E[-2 log U] = 2


def test_poisson_binomial_with_equal_probabilities_is_the_binomial_test():
    # 9 heads of 10 fair coins: P(X >= 9) = 11/1024, two-sided 22/1024
    assert anomaly.poisson_binomial_two_sided(np.full(10, 0.5), 9) == pytest.approx(22 / 1024)
    assert anomaly.poisson_binomial_two_sided(np.full(10, 0.5), 5) == 1.0
    # the normal approximation used for very many votes agrees in the bulk
    q = np.random.default_rng(1).uniform(0.2, 0.8, anomaly.EXACT_SIDE_MAX)
    x = int(q.sum() + 2.5 * math.sqrt((q * (1 - q)).sum()))
    exact = anomaly.poisson_binomial_two_sided(q, x)
    approx = anomaly.poisson_binomial_two_sided(np.r_[q, 0.0], x)  # one more (certain) trial: approximate path
    assert approx == pytest.approx(exact, rel=0.1)


def test_score_sum_matches_enumeration():
    rng = np.random.default_rng(2)
    dists = rng.dirichlet([1, 1, 1], size=4)
    pmf = np.zeros(9)
    for combo in np.ndindex(3, 3, 3, 3):
        pmf[sum(combo)] += np.prod([dists[i, c] for i, c in enumerate(combo)])
    for observed in range(9):
        want = min(1.0, 2 * min(pmf[observed:].sum(), pmf[: observed + 1].sum()))
        assert anomaly.score_sum_two_sided(dists, observed) == pytest.approx(want)


def test_holm_adjustment_matches_a_worked_example():
    # p = (0.01, 0.04, 0.03, 0.005), m = 4: sorted 0.005, 0.01, 0.03, 0.04 ->
    # 0.02, 0.03, 0.06, 0.06 (monotone)
    adjusted = anomaly.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


# --------------------------------------------------------------------------
# the detector on arrays


def test_simulated_adversaries_are_flagged_and_honest_voters_are_not():
    sim = simulate_arena(SEED)
    det = anomaly.detect(sim.voter, sim.model_a, sim.model_b, sim.outcome, n_voters=sim.n_voters)
    flagged = set(np.flatnonzero(det.flagged).tolist())
    assert flagged == set(sim.adversaries.values())
    # each adversary is caught by the test built for it
    assert det.side_p[sim.adversaries["always_a"]] < 1e-6
    assert det.favour_p[sim.adversaries["for_weak_model"]] < 1e-4


def test_an_arena_of_honest_voters_flags_nobody():
    sim = simulate_arena(SEED, adversary_votes=0)
    det = anomaly.detect(sim.voter, sim.model_a, sim.model_b, sim.outcome, n_voters=sim.n_voters)
    assert not det.flagged.any()
    assert det.tested[sim.honest].all()


def test_aggregated_rows_give_the_same_result_as_single_votes():
    sim = simulate_arena(SEED)
    one = anomaly.detect(sim.voter, sim.model_a, sim.model_b, sim.outcome, n_voters=sim.n_voters)
    key = np.stack([sim.voter, sim.model_a, sim.model_b, sim.outcome], axis=1)
    rows, count = np.unique(key, axis=0, return_counts=True)
    agg = anomaly.detect(*rows.T, n_voters=sim.n_voters, count=count)
    assert np.array_equal(one.flagged, agg.flagged)
    assert agg.adjusted_p == pytest.approx(one.adjusted_p, rel=1e-9, abs=1e-300)


def test_voters_with_few_votes_or_marked_untestable_are_not_tested():
    sim = simulate_arena(SEED)
    testable = np.ones(sim.n_voters, bool)
    testable[sim.adversaries["always_a"]] = False
    det = anomaly.detect(sim.voter, sim.model_a, sim.model_b, sim.outcome, n_voters=sim.n_voters,
                         testable=testable, min_votes=1000)  # fmt: skip
    assert not det.tested.any() and not det.flagged.any()


# --------------------------------------------------------------------------
# the database layer


@pytest.fixture
def simulated_db(db):
    """The simulated arena as real rows: models, voters, votes (no features)."""
    from arena.models import ArenaModel, Voter
    from votes.models import Vote

    sim = simulate_arena(SEED)
    models = ArenaModel.objects.bulk_create([ArenaModel(name=f"sim-model-{i:02d}") for i in range(sim.n_models)])
    voters = Voter.objects.bulk_create([Voter(key=f"sim-voter-{u:03d}") for u in range(sim.n_voters)])
    winner = {anomaly.OUTCOME_A: "a", anomaly.OUTCOME_B: "b", anomaly.OUTCOME_TIE: "tie"}
    Vote.objects.bulk_create(
        [
            Vote(voter=voters[u], model_a=models[ma], model_b=models[mb], winner=winner[o])
            for u, ma, mb, o in zip(sim.voter, sim.model_a, sim.model_b, sim.outcome, strict=True)
        ],
        batch_size=2000,
    )
    return sim, models, voters


def test_detection_run_flags_the_adversaries_and_excludes_only_their_votes(simulated_db):
    from votes.models import Vote, VoteExclusionEvent, VoterFlag

    sim, _, voters = simulated_db
    adversary_ids = {voters[u].id for u in sim.adversaries.values()}
    report = anomaly.run_detection()

    assert set(report.newly_flagged) == adversary_ids
    assert set(VoterFlag.objects.filter(flagged=True).values_list("voter_id", flat=True)) == adversary_ids
    assert not VoterFlag.objects.filter(flagged=True).filter(changed_at=None).exists()  # when, and by the system:
    assert not VoterFlag.objects.filter(flagged=True).exclude(changed_by=None).exists()
    excluded = Vote.objects.filter(excluded=True)
    assert set(excluded.values_list("voter_id", flat=True)) == adversary_ids
    assert excluded.count() == Vote.objects.filter(voter_id__in=adversary_ids).count() == report.votes_excluded
    assert set(excluded.values_list("exclusion_reason", flat=True)) == {"anomalous_voter"}
    assert not excluded.filter(excluded_at=None).exists()
    assert not excluded.exclude(excluded_by=None).exists()  # the system did it
    events = VoteExclusionEvent.objects.filter(action="exclude")
    assert events.count() == excluded.count() and not events.exclude(by=None).exists()
    # every tested voter has a stored score; the adversaries score highest
    scores = dict(VoterFlag.objects.values_list("voter_id", "score"))
    assert len(scores) == sim.n_voters
    top3 = sorted(scores, key=scores.get, reverse=True)[:3]
    assert set(top3) == adversary_ids
    assert Vote.objects.count() == len(sim.voter)  # nothing deleted


def test_unflagging_reinstates_exactly_the_votes_the_flag_excluded(simulated_db):
    from django.contrib.auth.models import User

    from votes.models import Vote, VoteExclusionEvent, VoterFlag

    sim, _, voters = simulated_db
    target = voters[sim.adversaries["for_weak_model"]]
    # one of its votes was already excluded by a person for another reason
    other = Vote.objects.filter(voter=target).order_by("id").first()
    Vote.objects.filter(id=other.id).update(excluded=True, exclusion_reason="spam")
    anomaly.run_detection()
    flagged_excluded = Vote.objects.filter(voter=target, exclusion_reason="anomalous_voter").count()
    assert flagged_excluded == Vote.objects.filter(voter=target).count() - 1

    staff = User.objects.create_user("moderator", is_staff=True)
    reinstated = anomaly.unflag_voter(target.id, by=staff)

    assert reinstated == flagged_excluded
    assert Vote.objects.get(id=other.id).exclusion_reason == "spam"  # untouched
    assert not Vote.objects.filter(voter=target, excluded=True).exclude(id=other.id).exists()
    flag = VoterFlag.objects.get(voter=target)
    assert not flag.flagged and flag.manual and flag.changed_by == staff and flag.changed_at is not None
    events = VoteExclusionEvent.objects.filter(action="reinstate", vote__voter=target)
    assert events.count() == reinstated and set(events.values_list("by", flat=True)) == {staff.id}
    # a person's decision stands against the next detector run
    anomaly.run_detection()
    assert not VoterFlag.objects.get(voter=target).flagged
    assert not Vote.objects.filter(voter=target, exclusion_reason="anomalous_voter").exists()
    assert anomaly.unflag_voter(target.id, by=staff) == 0  # twice is harmless


def test_a_flagged_voters_later_votes_are_excluded_on_the_next_run(simulated_db):
    from votes.models import Vote

    sim, models, voters = simulated_db
    villain = voters[sim.adversaries["always_a"]]
    anomaly.run_detection()
    late = Vote.objects.create(voter=villain, model_a=models[0], model_b=models[1], winner="a")
    assert not Vote.objects.get(id=late.id).excluded
    anomaly.run_detection()
    assert Vote.objects.get(id=late.id).exclusion_reason == "anomalous_voter"


def test_staff_can_flag_a_voter_the_detector_passed(simulated_db):
    from django.contrib.auth.models import User

    from votes.models import Vote, VoterFlag

    sim, _, voters = simulated_db
    honest = voters[sim.honest[0]]
    staff = User.objects.create_user("moderator2", is_staff=True)
    n = anomaly.flag_voter(honest.id, by=staff)
    assert n == Vote.objects.filter(voter=honest).count() > 0
    assert anomaly.flag_voter(honest.id, by=staff) == 0  # twice is harmless
    anomaly.run_detection()
    flag = VoterFlag.objects.get(voter=honest)
    assert flag.flagged and flag.manual
    assert set(Vote.objects.filter(voter=honest).values_list("excluded_by", flat=True)) == {staff.id}


def test_the_shared_import_voter_is_never_flagged(db):
    """Votes from files without judge ids all belong to import:unknown: not a person."""
    from arena.models import ArenaModel, Voter
    from votes.importers import SHARED_VOTER_KEY
    from votes.models import Vote

    sim = simulate_arena(SEED)
    models = ArenaModel.objects.bulk_create([ArenaModel(name=f"m{i}") for i in range(sim.n_models)])
    voters = Voter.objects.bulk_create([Voter(key=f"v{u}") for u in range(sim.n_voters)])
    shared = Voter.objects.create(key=SHARED_VOTER_KEY)
    winner = {0: "a", 1: "b", 2: "tie"}
    Vote.objects.bulk_create(
        [Vote(voter=voters[u], model_a=models[ma], model_b=models[mb], winner=winner[o])
         for u, ma, mb, o in zip(sim.voter, sim.model_a, sim.model_b, sim.outcome, strict=True)]
        + [Vote(voter=shared, model_a=models[i % 12], model_b=models[(i + 1) % 12], winner="a") for i in range(300)]
    )  # fmt: skip
    anomaly.run_detection()
    assert not Vote.objects.filter(voter=shared, excluded=True).exists()


def test_the_detection_task_is_registered_and_scheduled(simulated_db, settings):
    from arena.celery import app
    from votes.models import VoterFlag
    from votes.tasks import detect_anomalies

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "votes.detect_anomalies" in schedule
    app.loader.import_default_modules()
    assert "votes.detect_anomalies" in app.tasks
    result = detect_anomalies.apply().get()
    assert result["flagged"] == 3
    assert detect_anomalies.apply().get()["newly_flagged"] == []  # twice is harmless
    assert VoterFlag.objects.filter(flagged=True).count() == 3


def test_favouritism_tolerance_lets_honest_taste_pass_but_not_rigging():
    # 30 votes on a model the consensus gives 40% wins, 30% ties, 30% losses:
    # 33 half-points expected. A fan gives it 42 (70% of the points).
    dists = np.tile([0.3, 0.3, 0.4], (30, 1))
    liked = 42
    assert anomaly.score_sum_two_sided(dists, liked) < 0.1
    assert anomaly.score_sum_two_sided(dists, liked, tolerance=1.0) > 0.5
    assert anomaly.score_sum_two_sided(dists, 60, tolerance=1.0) < 1e-6  # won every time
    assert anomaly.score_sum_two_sided(dists, 0, tolerance=1.0) < 1e-6  # lost every time
    # no tolerance: the plain two-sided exact test
    assert anomaly.score_sum_two_sided(dists, liked) < anomaly.score_sum_two_sided(dists, liked, tolerance=0.5)
