"""votes.moderation: bulk exclude / reinstate with reason, who and when."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from votes import anomaly, moderation
from votes.models import Vote, VoteExclusionEvent
from votes.services import RECOMPUTE_QUEUED_KEY

pytestmark = pytest.mark.django_db


def test_exclude_records_reason_who_and_when_per_vote(arena_votes, moderator):
    ids = [v.id for v in arena_votes[:4]]

    changed = moderation.exclude_votes(ids, reason="spam", by=moderator)

    assert sorted(changed) == sorted(ids)
    for vote in Vote.objects.filter(id__in=ids):
        assert (vote.excluded, vote.exclusion_reason, vote.excluded_by) == (True, "spam", moderator)
        assert vote.excluded_at is not None
    events = VoteExclusionEvent.objects.filter(vote_id__in=ids)
    assert sorted(events.values_list("vote_id", "action", "reason", "by")) == sorted(
        (i, "exclude", "spam", moderator.id) for i in ids
    )
    assert Vote.objects.filter(excluded=False).count() == len(arena_votes) - 4


def test_excluding_again_changes_nothing_and_keeps_the_first_reason(arena_votes, moderator):
    moderation.exclude_votes([arena_votes[0].id], reason="spam", by=moderator)

    assert moderation.exclude_votes([arena_votes[0].id, arena_votes[1].id], reason="duplicate", by=None) == [
        arena_votes[1].id
    ]
    assert Vote.objects.get(id=arena_votes[0].id).exclusion_reason == "spam"
    assert VoteExclusionEvent.objects.filter(vote_id=arena_votes[0].id).count() == 1


def test_reinstate_counts_votes_again_and_records_why(arena_votes, moderator):
    ids = [v.id for v in arena_votes[:3]]
    moderation.exclude_votes(ids, reason="spam", by=moderator)

    assert sorted(moderation.reinstate_votes(Vote.objects.filter(id__in=ids), reason="mistake", by=moderator)) == ids
    assert not Vote.objects.filter(id__in=ids, excluded=True).exists()
    assert set(Vote.objects.filter(id__in=ids).values_list("exclusion_reason", "excluded_at", "excluded_by")) == {
        ("", None, None)
    }
    assert list(VoteExclusionEvent.objects.filter(vote_id=ids[0]).values_list("action", "reason")) == [
        ("exclude", "spam"),
        ("reinstate", "mistake"),
    ]
    assert moderation.reinstate_votes(ids, reason="mistake", by=moderator) == []


def test_votes_of_a_flagged_voter_follow_the_flag_not_a_manual_reinstate(arena_votes, moderator):
    voter = arena_votes[0].voter
    assert anomaly.flag_voter(voter.id, by=moderator) == 1

    assert moderation.reinstate_votes([arena_votes[0].id], reason="mistake", by=moderator) == []
    assert Vote.objects.get(id=arena_votes[0].id).excluded
    assert anomaly.unflag_voter(voter.id, by=moderator) == 1
    assert not Vote.objects.get(id=arena_votes[0].id).excluded
    assert list(VoteExclusionEvent.objects.filter(vote=arena_votes[0]).values_list("action", "reason", "by")) == [
        ("exclude", "anomalous_voter", moderator.id),
        ("reinstate", "anomalous_voter", moderator.id),
    ]


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "a reason is required"),
        ("   ", "a reason is required"),
        ("x" * 65, "at most 64"),
        ("spam<script>", "only letters, digits"),
        ("anomalous_voter", "set by flagging the voter"),
    ],
)
def test_a_bad_reason_is_refused_and_nothing_is_written(arena_votes, reason, message):
    with pytest.raises(moderation.ModerationError, match=message):
        moderation.exclude_votes([arena_votes[0].id], reason=reason)
    assert not Vote.objects.filter(excluded=True).exists()
    assert not VoteExclusionEvent.objects.exists()


def test_reasons_are_normalised_to_codes():
    assert moderation.clean_reason("  Test Account ") == "test_account"
    assert moderation.clean_reason("imported:named") == "imported:named"


def test_an_exclusion_requests_a_recompute_after_commit(arena_votes, django_capture_on_commit_callbacks):
    cache.delete(RECOMPUTE_QUEUED_KEY)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        moderation.exclude_votes([arena_votes[0].id], reason="spam")
    assert callbacks
    assert cache.get(RECOMPUTE_QUEUED_KEY) is not None


def test_nothing_changed_requests_no_recompute(arena_votes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        moderation.reinstate_votes([arena_votes[0].id], reason="mistake")
    assert callbacks == []


def test_ban_and_unban(arena_votes):
    voters = [arena_votes[0].voter_id, arena_votes[1].voter_id]
    assert moderation.set_banned(voters, True) == 2
    assert moderation.set_banned(voters, True) == 0
    assert moderation.set_banned(voters[:1], False) == 1
