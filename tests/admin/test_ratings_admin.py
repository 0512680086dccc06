"""Snapshots in the admin: parameters and fingerprints, comparing two; the
dashboard's figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from arena.models import ArenaModel, Battle
from ratings import dashboard
from ratings.compare import compare_rows
from ratings.models import RecomputeRun, Snapshot
from ratings.selectors import leaderboard_rows, registry, snapshot_view, standings
from ratings.services import recompute_publish
from tests.arena.factories import BattleFactory
from votes import moderation
from votes.models import Vote

pytestmark = pytest.mark.django_db


def row(model, rating, rank, battles=10):
    return {"model": model, "rating": rating, "rank": rank, "battles": battles}


def test_compare_rows_reports_rating_and_rank_changes_new_and_gone_models():
    old = [row("a", 1100, 1), row("b", 1000, 2), row("c", 900, 3)]
    new = [row("b", 1050, 1), row("a", 1040, 2), row("d", 980, 3)]
    out = {r["model"]: r for r in compare_rows(old, new)}
    assert [r["model"] for r in compare_rows(old, new)] == ["b", "a", "d", "c"]
    assert (out["b"]["rating_change"], out["b"]["rank_change"]) == (50, 1)
    assert (out["a"]["rating_change"], out["a"]["rank_change"]) == (-60, -1)
    assert out["d"]["state"] == "new" and out["d"]["old_rating"] is None and out["d"]["rank_change"] is None
    assert out["c"]["state"] == "gone" and out["c"]["new_rank"] is None


def test_the_snapshot_page_shows_parameters_fingerprints_and_views(operator_client, arena_votes):
    snap = recompute_publish()
    page = operator_client.get(f"/admin/ratings/snapshot/{snap.id}/change/").content.decode()
    assert snap.fingerprint in page
    for view in snap.views.all():
        assert view.counts_fingerprint in page and view.key in page
    assert "&quot;scale&quot;: 400" in page or '"scale": 400' in page
    listing = operator_client.get("/admin/ratings/snapshot/")
    assert listing.context["cl"].result_list[0].n_views == snap.views.count()
    assert snap.fingerprint[:12] in listing.content.decode()


def test_comparing_two_snapshots_shows_the_changes_per_model(operator_client, arena_votes, moderator):
    before = recompute_publish()
    # Exclude the votes in which xenon beat yarrow: xenon drops.
    gone = [v.id for v in arena_votes if v.model_a.name == "xenon-1" and v.model_b.name == "yarrow-2"
            and v.winner == "a"]  # fmt: skip
    moderation.exclude_votes(gone, reason="spam", by=moderator)
    after = recompute_publish()

    # The admin action picks the two selected snapshots, older first.
    response = operator_client.post(
        "/admin/ratings/snapshot/", {"action": "compare_two", "_selected_action": [after.id, before.id]}
    )
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/ratings/snapshot/compare/?a={before.id}&b={after.id}")

    page = operator_client.get(response["Location"])
    assert page.status_code == 200
    rows = {r["model"]: r for r in page.context["rows"]}
    # Rows are joined with the registry and ranked as the leaderboard ranks them.
    old = {r["model"]: r for r in standings(before.rows, registry()).values()}
    new = {r["model"]: r for r in standings(after.rows, registry()).values()}
    for name in ("xenon-1", "yarrow-2", "zinc-3"):
        assert rows[name]["rating_change"] == pytest.approx(new[name]["rating"] - old[name]["rating"])
        if old[name]["rank"] is None or new[name]["rank"] is None:  # unranked (preliminary): no rank change
            assert rows[name]["rank_change"] is None
        else:
            assert rows[name]["rank_change"] == old[name]["rank"] - new[name]["rank"]
    assert rows["xenon-1"]["rating_change"] < 0
    html = page.content.decode()
    assert f"{rows['xenon-1']['rating_change']:+.1f}" in html
    assert f"{before.vote_count} votes" in html and f"{after.vote_count} votes" in html


def test_compare_needs_exactly_two_and_explains_bad_input(operator_client, arena_votes):
    snap = recompute_publish()
    response = operator_client.post(
        "/admin/ratings/snapshot/", {"action": "compare_two", "_selected_action": [snap.id]}, follow=True
    )
    assert "Select exactly two snapshots" in response.content.decode()
    assert operator_client.get("/admin/ratings/snapshot/compare/?a=x&b=1").status_code == 400
    assert operator_client.get(f"/admin/ratings/snapshot/compare/?a={snap.id}&b=999").status_code == 404
    page = operator_client.get(f"/admin/ratings/snapshot/compare/?a={snap.id}&b={snap.id}&view=nonsense")
    assert page.status_code == 200 and "is not in both snapshots" in page.content.decode()
    same = standings(snap.rows, registry())
    assert page.context["rows"] and all(r["state"] == "both" and r["rating_change"] == 0 for r in page.context["rows"])
    assert all(
        r["rank_change"] == (None if same[ArenaModel.objects.get(name=r["model"]).id]["rank"] is None else 0)
        for r in page.context["rows"]
    )
    assert operator_client.get("/admin/ratings/snapshot/compare/").status_code == 200  # the chooser


def test_snapshots_cannot_be_added_edited_or_deleted(operator_client, arena_votes):
    snap = recompute_publish()
    assert operator_client.get("/admin/ratings/snapshot/add/").status_code == 403
    assert operator_client.post(f"/admin/ratings/snapshot/{snap.id}/delete/", {"post": "yes"}).status_code == 403
    assert Snapshot.objects.filter(id=snap.id).exists()


def test_votes_per_day_counts_utc_days_and_fills_gaps(arena_votes):
    now = timezone.now()
    Vote.objects.filter(id=arena_votes[0].id).update(created_at=now - timedelta(days=2))
    Vote.objects.filter(id=arena_votes[1].id).update(created_at=now - timedelta(days=30))
    days = dashboard.votes_per_day(today=now.date())
    assert len(days) == 14 and days[-1][0] == now.date()
    counts = dict(days)
    assert counts[now.date()] == len(arena_votes) - 2
    assert counts[now.date() - timedelta(days=2)] == 1
    assert sum(counts.values()) == len(arena_votes) - 1


def test_exclusion_shares_by_reason(arena_votes):
    moderation.exclude_votes([v.id for v in arena_votes[:3]], reason="spam")
    moderation.exclude_votes([arena_votes[3].id], reason="duplicate")
    found = dashboard.exclusions()
    assert (found["total"], found["excluded"]) == (30, 4)
    assert found["reasons"] == [{"reason": "spam", "votes": 3, "share": 0.1},
                                {"reason": "duplicate", "votes": 1, "share": pytest.approx(1 / 30)}]  # fmt: skip


def test_battles_in_progress():
    BattleFactory(status=Battle.Status.PENDING)
    BattleFactory(status=Battle.Status.READY)
    stale = BattleFactory(status=Battle.Status.READY)
    Battle.objects.filter(id=stale.id).update(created_at=timezone.now() - timedelta(hours=3))
    BattleFactory(status=Battle.Status.FAILED)
    assert dashboard.battles_in_progress() == {"streaming": 1, "awaiting_vote": 1, "failed_last_hour": 1}


def test_the_dashboard_page(moderator_client, arena_votes, operator):
    moderation.exclude_votes([arena_votes[0].id], reason="spam")
    snap = recompute_publish()
    RecomputeRun.objects.create(ci="sandwich", requested_by=operator, status="done", snapshot=snap)

    page = moderator_client.get("/admin/dashboard/")
    html = page.content.decode()

    assert page.status_code == 200
    assert 'data-votes="30"' in html  # today's bar
    assert "spam" in html and "3.33%" in html
    top = [r["model"] for r in leaderboard_rows(snapshot_view(snap, "overall", False))]
    assert [r["model"] for r in page.context["top"]] == top
    assert f'snapshot <a href="/admin/ratings/snapshot/{snap.id}/change/">#{snap.id}</a>' in html
    assert f"{snap.duration:.2f} s" in html
    assert "by olga" in html
    assert "dashboard-recompute" not in html  # a moderator cannot recompute
    assert 'data-url="/admin/dashboard/health/"' in html


def test_the_dashboard_of_an_empty_arena(operator_client):
    page = operator_client.get("/admin/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "No leaderboard published yet." in html and "no snapshot published yet" in html
    assert "dashboard-recompute" in html


def test_the_admin_index_links_to_the_dashboard(moderator_client):
    assert 'href="/admin/dashboard/"' in moderator_client.get("/admin/").content.decode()
