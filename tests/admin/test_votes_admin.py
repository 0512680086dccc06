"""Votes in the admin: filters, bulk exclude / reinstate with a reason
(recorded with who and when, and in the admin log), read-only otherwise."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from arena.models import ArenaModel
from votes import anomaly, moderation
from votes.models import Vote, VoteExclusionEvent

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/votes/vote/"


def listed(client, query: str = "") -> set[int]:
    response = client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200, response.content[:2000]
    return {v.id for v in response.context["cl"].result_list}


def test_filters_by_winner_model_voter_exclusion_reason_and_date(moderator_client, arena_votes, moderator):
    x = ArenaModel.objects.get(name="xenon-1")
    moderation.exclude_votes([arena_votes[0].id, arena_votes[1].id], reason="spam", by=moderator)
    moderation.exclude_votes([arena_votes[2].id], reason="duplicate", by=moderator)
    Vote.objects.filter(id=arena_votes[3].id).update(created_at=timezone.now() - timedelta(days=40))
    everything = {v.id for v in arena_votes}

    assert listed(moderator_client) == everything
    assert listed(moderator_client, "winner__exact=tie") == {v.id for v in arena_votes if v.winner == "tie"}
    assert listed(moderator_client, f"model={x.pk}") == {
        v.id for v in arena_votes if x.pk in (v.model_a_id, v.model_b_id)
    }
    voter = arena_votes[5].voter_id
    assert listed(moderator_client, f"voter={voter}") == {arena_votes[5].id}
    assert listed(moderator_client, "excluded__exact=1") == {v.id for v in arena_votes[:3]}
    assert listed(moderator_client, "excluded__exact=0") == everything - {v.id for v in arena_votes[:3]}
    assert listed(moderator_client, "reason=spam") == {arena_votes[0].id, arena_votes[1].id}
    assert listed(moderator_client, "reason=duplicate") == {arena_votes[2].id}
    # The "Past 7 days" link of the date filter.
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    week = {"created_at__gte": str(today - timedelta(days=7)), "created_at__lt": str(today + timedelta(days=1))}
    assert listed(moderator_client, urlencode(week)) == everything - {arena_votes[3].id}
    assert listed(moderator_client, f"model={x.pk}&excluded__exact=1&reason=spam") == {
        v.id for v in arena_votes[:2] if x.pk in (v.model_a_id, v.model_b_id)
    }
    # The reason choices come from the data.
    page = moderator_client.get(CHANGELIST).content.decode()
    assert "?reason=spam" in page and "?reason=duplicate" in page


def test_a_malformed_filter_value_lists_nothing_instead_of_failing(moderator_client, arena_votes):
    assert listed(moderator_client, "model=abc") == set()
    assert listed(moderator_client, "voter=abc") == set()
    assert moderator_client.get(f"{CHANGELIST}?winner__exact=nonsense").status_code == 200


def test_search_finds_a_voter_by_key(moderator_client, arena_votes):
    vote = arena_votes[7]
    assert listed(moderator_client, f"q={vote.voter.key}") == {vote.id}


def exclude_step(client, ids, follow: bool = False, **extra):
    return client.post(CHANGELIST, {"action": "exclude_selected", "_selected_action": ids, **extra}, follow=follow)


def test_excluding_selected_votes_asks_for_a_reason_then_records_it(moderator_client, moderator, arena_votes):
    ids = [arena_votes[0].id, arena_votes[1].id]

    page = exclude_step(moderator_client, ids)
    assert page.status_code == 200 and b"Exclude votes" in page.content
    assert not Vote.objects.filter(excluded=True).exists()  # nothing happens before the reason

    refused = exclude_step(moderator_client, ids, apply="yes", reason_choice="", reason_other="")
    assert refused.status_code == 200 and b"a reason is required" in refused.content
    assert not Vote.objects.filter(excluded=True).exists()

    done = exclude_step(moderator_client, ids, apply="yes", reason_choice="spam", follow=True)
    assert "Excluded 2 vote(s), reason spam." in done.content.decode()
    for vote in Vote.objects.filter(id__in=ids):
        assert (vote.excluded, vote.exclusion_reason, vote.excluded_by) == (True, "spam", moderator)
    assert VoteExclusionEvent.objects.filter(vote_id__in=ids, by=moderator, reason="spam").count() == 2
    entries = LogEntry.objects.filter(user=moderator)
    assert sorted(entries.values_list("object_id", flat=True)) == sorted(str(i) for i in ids)
    assert {e.change_message for e in entries} == {"Excluded (spam)."}


def test_an_other_reason_is_typed_in(moderator_client, arena_votes):
    exclude_step(moderator_client, [arena_votes[0].id], apply="yes", reason_other="Brigading")
    assert Vote.objects.get(id=arena_votes[0].id).exclusion_reason == "brigading"


def test_excluding_every_vote_matching_a_filter(moderator_client, moderator, arena_votes):
    x = ArenaModel.objects.get(name="xenon-1")
    of_x = {v.id for v in arena_votes if x.pk in (v.model_a_id, v.model_b_id)}
    response = moderator_client.post(
        f"{CHANGELIST}?model={x.pk}",
        {"action": "exclude_selected", "_selected_action": [arena_votes[0].id], "select_across": "1",
         "apply": "yes", "reason_choice": "test_account"},
    )  # fmt: skip
    assert response.status_code == 302
    assert set(Vote.objects.filter(excluded=True).values_list("id", flat=True)) == of_x


def test_reinstating_selected_votes(moderator_client, moderator, arena_votes):
    ids = [v.id for v in arena_votes[:3]]
    moderation.exclude_votes(ids, reason="spam", by=moderator)
    anomaly.flag_voter(arena_votes[4].voter_id, by=moderator)

    response = moderator_client.post(
        CHANGELIST,
        {"action": "reinstate_selected", "_selected_action": [*ids, arena_votes[4].id], "apply": "yes",
         "reason_choice": "mistake"},
        follow=True,
    )  # fmt: skip
    text = response.content.decode()
    assert "Reinstated 3 vote(s), reason mistake; 1 left as they were (votes of flagged voters follow" in text
    assert not Vote.objects.filter(id__in=ids, excluded=True).exists()
    assert Vote.objects.get(id=arena_votes[4].id).excluded
    assert VoteExclusionEvent.objects.filter(action="reinstate", reason="mistake", by=moderator).count() == 3


def test_a_vote_page_shows_why_it_was_excluded_and_its_history(moderator_client, moderator, arena_votes):
    vote = arena_votes[0]
    moderation.exclude_votes([vote.id], reason="duplicate", by=moderator)
    moderation.reinstate_votes([vote.id], reason="mistake", by=moderator)
    moderation.exclude_votes([vote.id], reason="spam", by=moderator)

    page = moderator_client.get(f"/admin/votes/vote/{vote.id}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "spam or abuse" in html and "mo" in html
    for reason in ("duplicate", "mistake", "spam"):
        assert reason in html
    assert f"/admin/arena/battle/{vote.battle_id}/change/" in html
    assert 'name="_save"' not in html  # read-only: changes only through the actions


def test_votes_cannot_be_added_deleted_or_edited(operator_client, arena_votes):
    vote = arena_votes[0]
    assert operator_client.get("/admin/votes/vote/add/").status_code == 403
    assert operator_client.post(f"/admin/votes/vote/{vote.id}/delete/", {"post": "yes"}).status_code == 403
    before = vote.winner
    operator_client.post(f"/admin/votes/vote/{vote.id}/change/", {"winner": "tie", "excluded": "on"})
    vote.refresh_from_db()
    assert (vote.winner, vote.excluded) == (before, False)
    assert "delete_selected" not in operator_client.get(CHANGELIST).content.decode()


def test_the_exclusion_event_list(moderator_client, moderator, arena_votes):
    moderation.exclude_votes([arena_votes[0].id], reason="spam", by=moderator)
    page = moderator_client.get("/admin/votes/voteexclusionevent/?action__exact=exclude")
    assert page.status_code == 200
    assert [e.vote_id for e in page.context["cl"].result_list] == [arena_votes[0].id]


def test_a_new_reason_is_offered_as_a_filter_at_once(moderator_client, arena_votes):
    assert "?reason=brigading" not in moderator_client.get(CHANGELIST).content.decode()  # the list is now cached
    exclude_step(moderator_client, [arena_votes[0].id], apply="yes", reason_other="brigading")
    assert "?reason=brigading" in moderator_client.get(CHANGELIST).content.decode()
