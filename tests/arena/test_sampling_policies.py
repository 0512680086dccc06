"""The pair-sampling policies (arena/sampling.py) as pure functions."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from arena import sampling


@pytest.mark.parametrize("policy", sampling.POLICIES)
def test_every_policy_returns_two_distinct_models(policy):
    rng = random.Random(0)
    for _ in range(500):
        i, j = sampling.pick_pair(policy, 5, rng, weights=[1, 2, 3, 4, 5], theta=[0.0] * 5, counts={})
        assert i != j and 0 <= i < 5 and 0 <= j < 5


def test_weighted_never_picks_a_zero_weight_model_and_follows_weights():
    rng = random.Random(1)
    seen = Counter()
    for _ in range(4000):
        i, j = sampling.pick_pair("weighted", 4, rng, weights=[0, 1, 1, 6])
        seen.update([i, j])
    assert seen[0] == 0
    assert seen[3] > seen[1] and seen[3] > seen[2]


def test_uniform_covers_every_pair_evenly():
    rng = random.Random(2)
    pairs = Counter(tuple(sorted(sampling.pick_pair("uniform", 4, rng))) for _ in range(6000))
    assert len(pairs) == 6
    assert max(pairs.values()) / min(pairs.values()) < 1.25


def test_active_prefers_models_with_little_information():
    # Models 0-2 have met often; model 3 is new.
    counts = {(0, 1): 500, (0, 2): 500, (1, 2): 500}
    w = sampling.pair_weights_active([0.0, 0.0, 0.0, 0.0], counts, 4)
    assert min(w[(0, 3)], w[(1, 3)], w[(2, 3)]) > 10 * max(w[(0, 1)], w[(0, 2)], w[(1, 2)])


def test_active_prefers_close_matchups_among_equally_sampled_models():
    counts = {(i, j): 100 for i in range(3) for j in range(i + 1, 3)}
    w = sampling.pair_weights_active([0.0, 0.1, 3.0], counts, 3)
    assert w[(0, 1)] > w[(0, 2)]


def test_unknown_policy_and_too_few_models_are_rejected():
    with pytest.raises(ValueError):
        sampling.pick_pair("round-robin", 3, random.Random(0))
    with pytest.raises(ValueError):
        sampling.pick_pair("uniform", 1, random.Random(0))
