"""Battles (read-only, side by side, identities shown) and voters (anomaly
score, history, flag / unflag, ban / unban) in the admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from arena.models import Battle, Voter
from tests.arena.factories import ArenaModelFactory, BattleFactory, VoteFactory
from votes import moderation
from votes.models import Vote, VoterFlag

pytestmark = pytest.mark.django_db


def test_a_battle_shows_both_sides_side_by_side_with_identities_and_its_vote(moderator_client, moderator):
    x, y = ArenaModelFactory(name="xenon-1"), ArenaModelFactory(name="yarrow-2")
    vote = VoteFactory(pair_a=x, pair_b=y, winner="b",
                       battle__prompt="Explain recursion", battle__response_a="Recursion is...",
                       battle__response_b="A function calling itself.")  # fmt: skip
    moderation.exclude_votes([vote.id], reason="duplicate", by=moderator)

    page = moderator_client.get(f"/admin/arena/battle/{vote.battle_id}/change/")
    html = page.content.decode()

    assert page.status_code == 200
    assert "Model A: xenon-1" in html and "Model B: yarrow-2" in html
    assert html.index("Recursion is...") < html.index("A function calling itself.")
    assert "Explain recursion" in html
    assert "B (yarrow-2)" in html and "<strong>excluded</strong>" in html and "<code>duplicate</code>" in html
    assert "by mo" in html


def test_a_multi_turn_battle_shows_every_turn(moderator_client):
    battle = BattleFactory(turns=[{"prompt": "first?", "a": "left one", "b": "right one"},
                                  {"prompt": "second?", "a": "left two", "b": "right two"}])  # fmt: skip
    html = moderator_client.get(f"/admin/arena/battle/{battle.id}/change/").content.decode()
    order = [html.index(text) for text in ("Turn 1<", "first?", "left one", "right one", "Turn 2<", "second?",
                                           "left two", "right two")]  # fmt: skip
    assert order == sorted(order)


def test_the_admin_renders_answers_as_the_voter_saw_them(moderator_client):
    battle = BattleFactory(
        response_a="1. one\n2. two\nstill two\n\n```python\nx = 1\n```",
        response_b="$$\\frac{1}{2}$$ and | a |\n|---|\n| 1 |",
        prompt="**bold** prompt",
    )
    html = moderator_client.get(f"/admin/arena/battle/{battle.id}/change/").content.decode()
    assert "two<br />\nstill two" in html
    assert '<span class="n">x</span>' in html and "arena/pygments.css" in html
    assert "<math" in html and "<mfrac>" in html
    assert "<strong>bold</strong> prompt" in html


def test_answers_are_shown_as_text_never_as_html(moderator_client):
    battle = BattleFactory(response_a="<script>alert(1)</script>", response_b='<img src=x onerror="alert(2)">',
                           prompt="<b>bold?</b>")  # fmt: skip
    html = moderator_client.get(f"/admin/arena/battle/{battle.id}/change/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b>bold?</b>" not in html


def test_battles_search_by_prompt_and_filter_by_model_status_vote_and_date(moderator_client):
    x, y, z = (ArenaModelFactory(name=n) for n in ("xenon-1", "yarrow-2", "zinc-3"))
    haiku = BattleFactory(model_a=x, model_b=y, prompt="Write a haiku about autumn")
    sql = BattleFactory(model_a=y, model_b=z, prompt="Explain SQL joins", status=Battle.Status.FAILED)
    voted = VoteFactory(pair_a=z, pair_b=x).battle
    excluded = VoteFactory(pair_a=z, pair_b=y)
    moderation.exclude_votes([excluded.id], reason="spam")
    old = BattleFactory(model_a=x, model_b=z)
    Battle.objects.filter(id=old.id).update(created_at=timezone.now() - timezone.timedelta(days=60))

    def listed(query: str) -> set:
        response = moderator_client.get(f"/admin/arena/battle/?{query}")
        assert response.status_code == 200
        return {b.id for b in response.context["cl"].result_list}

    assert listed("q=HAIKU") == {haiku.id}
    assert listed(f"q={sql.id}") == {sql.id}
    assert listed(f"model={x.pk}") == {haiku.id, voted.id, old.id}
    assert listed("status__exact=failed") == {sql.id}
    assert listed("vote=none") == {haiku.id, sql.id, old.id}
    assert listed("vote=excluded") == {excluded.battle_id}
    assert listed("vote=counted") == {voted.id}
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    recent = f"created_at__gte={today - timezone.timedelta(days=7)}&created_at__lt={today + timezone.timedelta(days=1)}"
    assert listed(recent.replace("+", "%2B")) == {haiku.id, sql.id, voted.id, excluded.battle_id}


def test_battles_are_read_only(operator_client):
    battle = BattleFactory(prompt="original")
    assert operator_client.get("/admin/arena/battle/add/").status_code == 403
    operator_client.post(f"/admin/arena/battle/{battle.id}/change/", {"prompt": "changed"})
    battle.refresh_from_db()
    assert battle.prompt == "original"


def test_a_voter_page_shows_the_anomaly_score_and_the_vote_history(moderator_client, arena_votes):
    voter = arena_votes[0].voter
    for vote in arena_votes[1:6]:
        Vote.objects.filter(id=vote.id).update(voter=voter)
    VoterFlag.objects.create(voter=voter, votes_tested=6, score=4.2, adjusted_p=10**-4.2, outcome_p=1e-5,
                             scored_at=timezone.now())  # fmt: skip
    moderation.exclude_votes([arena_votes[1].id], reason="spam")

    html = moderator_client.get(f"/admin/arena/voter/{voter.id}/change/").content.decode()
    assert "score <b>4.2</b>" in html and "6 votes tested" in html
    assert "6 votes, 1 excluded" in html and "excluded: spam" in html
    assert f"/admin/votes/vote/?voter={voter.id}" in html

    listing = moderator_client.get("/admin/arena/voter/?o=-5")  # by anomaly score, highest first
    assert listing.context["cl"].result_list[0] == voter
    assert "4.2" in listing.content.decode()


def test_flag_and_unflag_voters_exclude_and_reinstate_their_votes(moderator_client, moderator, arena_votes):
    voter = arena_votes[0].voter
    url = "/admin/arena/voter/"

    moderator_client.post(url, {"action": "flag", "_selected_action": [voter.id]})

    flag = VoterFlag.objects.get(voter=voter)
    assert (flag.flagged, flag.manual, flag.changed_by) == (True, True, moderator)
    vote = Vote.objects.get(id=arena_votes[0].id)
    assert (vote.excluded, vote.exclusion_reason, vote.excluded_by) == (True, "anomalous_voter", moderator)
    assert "Flagged as anomalous; 1 vote(s) excluded." in LogEntry.objects.get(object_id=str(voter.id)).change_message

    moderator_client.post(url, {"action": "unflag", "_selected_action": [voter.id]})
    assert not VoterFlag.objects.get(voter=voter).flagged
    assert not Vote.objects.get(id=arena_votes[0].id).excluded
    assert listed_flagged(moderator_client) == set()


def listed_flagged(client) -> set:
    return {v.id for v in client.get("/admin/arena/voter/?flag=flagged").context["cl"].result_list}


def test_ban_and_unban_voters(moderator_client, moderator, arena_votes):
    voters = [arena_votes[0].voter, arena_votes[1].voter]
    ids = [v.id for v in voters]
    moderator_client.post("/admin/arena/voter/", {"action": "ban", "_selected_action": ids})
    assert set(Voter.objects.filter(id__in=ids).values_list("banned", flat=True)) == {True}
    assert LogEntry.objects.filter(change_message="Banned.", user=moderator).count() == 2
    assert {v.id for v in moderator_client.get("/admin/arena/voter/?banned__exact=1").context["cl"].result_list} == set(
        ids
    )
    moderator_client.post("/admin/arena/voter/", {"action": "unban", "_selected_action": ids[:1]})
    assert list(Voter.objects.filter(id__in=ids).order_by("id").values_list("banned", flat=True)) == [False, True]
    # Banning changes no stored vote.
    assert not Vote.objects.filter(excluded=True).exists()
