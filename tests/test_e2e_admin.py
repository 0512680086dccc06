"""The admin panel in a real headless Chromium (Debian's, through Playwright),
against the live server and a real Celery worker: an operator logs in and,
through the admin pages only, adds a live model and tests its endpoint,
deprecates it, excludes a spammer's votes, recomputes, sees the published
leaderboard change, and compares the two snapshots.

Screenshots go to test-artifacts/screenshots, or to docs/screenshots with
ARENA_SCREENSHOTS=docs (the committed ones).
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from arena.models import ArenaModel, Voter
from ratings.models import RecomputeRun, Snapshot
from ratings.selectors import joined, registry, standings
from ratings.services import recompute_publish
from tests.admin.conftest import staff
from tests.arena.factories import VoteFactory, VoterFactory
from tests.fake_openai import FakeOpenAI
from votes.models import Vote

pytestmark = [pytest.mark.browser, pytest.mark.worker]

# The honest voters' taste; a spammer pushes the last one to the top.
TASTE = ["cobalt-13b", "ember-20b", "atlas-7b", "dune-1b", "breeze-3b"]
SPAM_FOR = "breeze-3b"


@pytest.fixture
def desktop(new_context):
    """Wider than the voting pages' desktop: the admin's changelists have many columns."""
    return new_context(timeout_ms=20_000, viewport={"width": 1400, "height": 950})


@pytest.fixture
def fake_endpoint():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def rigged_arena(demo_models):
    """Honest votes mostly following TASTE, and one spammer voting breeze-3b up; the
    published leaderboard has breeze-3b on top."""
    by_name = {m.name: m for m in demo_models}
    for i, first in enumerate(TASTE):
        for second in TASTE[i + 1 :]:
            for k in range(12):  # 48 votes a model: above the leaderboard's 30-vote minimum
                a, b = (first, second) if k % 2 else (second, first)
                preferred = first if k % 4 else second  # one upset in four
                VoteFactory(pair_a=by_name[a], pair_b=by_name[b], winner="a" if a == preferred else "b")
    spammer = VoterFactory(key="spammer-7f3a")
    for other in TASTE[:-1]:
        for k in range(25):
            a, b = (SPAM_FOR, other) if k % 2 else (other, SPAM_FOR)
            VoteFactory(pair_a=by_name[a], pair_b=by_name[b], winner="a" if a == SPAM_FOR else "b",
                        battle__voter=spammer)  # fmt: skip
    snap = recompute_publish()
    assert max(joined(snap.rows, registry()), key=lambda r: r["rating"])["model"] == SPAM_FOR, snap.rows
    return snap


def leaderboard_order(page, base: str) -> list[str]:
    page.goto(f"{base}/leaderboard/")
    return page.locator("#leaderboard tbody tr[data-model]").evaluate_all("rows => rows.map(r => r.dataset.model)")


def run_action(page, action: str) -> None:
    page.locator('select[name="action"]').select_option(action)
    page.locator('button[name="index"]').first.click()


def test_an_operator_runs_the_arena_from_the_admin(
    desktop, live_server, rigged_arena, start_worker, fake_endpoint, shots
):
    from playwright.sync_api import expect

    worker = start_worker()
    operator = staff("olga", "admin")
    base = live_server.url
    page = desktop.new_page()
    assert leaderboard_order(page, base)[0] == SPAM_FOR

    # Log in.
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-olga")
    page.locator('input[type="submit"]').click()
    expect(page.locator("#site-name")).to_contain_text("Arena admin")

    # The dashboard, with the worker answering.
    page.get_by_role("link", name="Dashboard").first.click()
    expect(page.locator("#health-broker")).to_contain_text("ok", timeout=20_000)
    expect(page.locator("#health-workers")).not_to_have_text("none")
    expect(page.locator("#leaderboard-top tbody tr").first).to_have_attribute("data-model", SPAM_FOR)
    page.screenshot(path=shots / "admin-dashboard.png", full_page=True)

    # Add a live model and test its endpoint (a real HTTP call).
    fake_endpoint.script("nova-chat", text="Yes, I am here and listening.")
    page.goto(f"{base}/admin/arena/arenamodel/")
    page.get_by_role("link", name="Add model").click()
    page.fill("#id_name", "nova-8b")
    page.fill("#id_display_name", "Nova 8B")
    page.fill("#id_organization", "Nova Labs")
    page.locator("#id_provider_kind").select_option("openai")
    page.fill("#id_base_url", fake_endpoint.base_url)
    page.fill("#id_model", "nova-chat")
    page.fill("#id_identity_words_text", "Nova, Nova Labs")
    page.screenshot(path=shots / "admin-model-add.png", full_page=True)
    page.locator('input[name="_continue"]').click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    page.get_by_role("link", name="Test connection").click()
    page.locator("#run-test").click()
    expect(page.locator("#test-result")).to_contain_text("Connected")
    expect(page.locator("#test-result pre")).to_have_text("Yes, I am here and listening.")
    page.screenshot(path=shots / "admin-test-connection.png", full_page=True)
    nova = ArenaModel.objects.get(name="nova-8b")
    assert nova.provider_settings["base_url"] == fake_endpoint.base_url and nova.status == "active"

    # Deprecate it from the list, in bulk.
    page.goto(f"{base}/admin/arena/arenamodel/")
    page.locator("tr", has_text="nova-8b").locator("input.action-select").check()
    run_action(page, "deprecate")
    expect(page.locator(".messagelist")).to_contain_text("1 model(s) now deprecated")
    expect(page.locator("tr", has_text="nova-8b")).to_contain_text("deprecated")
    nova.refresh_from_db()
    assert nova.status == "deprecated"

    # Find the spammer, open their votes, exclude all of them with a reason.
    page.goto(f"{base}/admin/arena/voter/")
    page.fill("#searchbar", "spammer")
    page.locator("#searchbar").press("Enter")
    page.get_by_role("link", name="spammer-7f3a"[:12]).click()
    expect(page.locator(".field-history")).to_contain_text("100 votes, 0 excluded")
    page.get_by_role("link", name="all of them in the votes list").click()
    expect(page.locator(".paginator")).to_contain_text("100 votes")
    page.screenshot(path=shots / "admin-votes.png")
    page.locator("#action-toggle").check()
    run_action(page, "exclude_selected")
    page.locator("#id_reason_choice").select_option("spam")
    page.screenshot(path=shots / "admin-exclude-reason.png", full_page=True)
    page.locator("#apply-reason").click()
    expect(page.locator(".messagelist")).to_contain_text("Excluded 100 vote(s), reason spam.")
    spammer = Voter.objects.get(key="spammer-7f3a")
    assert set(Vote.objects.filter(voter=spammer).values_list("excluded", "exclusion_reason", "excluded_by")) == {
        (True, "spam", operator.id)
    }

    # A battle of theirs: both sides, identities, the vote and why it was excluded.
    battle_id = Vote.objects.filter(voter=spammer).values_list("battle_id", flat=True).first()
    page.goto(f"{base}/admin/arena/battle/{battle_id}/change/")
    expect(page.locator(".arena-battle thead")).to_contain_text("Model A:")
    expect(page.locator(".field-vote_detail")).to_contain_text("excluded, reason spam, by olga")
    page.screenshot(path=shots / "admin-battle.png", full_page=True)

    # Recompute now, and watch it finish.
    page.goto(f"{base}/admin/ratings/recomputerun/")
    page.locator("#recompute-now").click()
    page.locator("#start-recompute").click()
    expect(page.locator("#run-status")).to_have_text("done", timeout=60_000)
    expect(page.locator("#run-result")).to_contain_text("snapshot")
    page.screenshot(path=shots / "admin-recompute.png", full_page=True)
    run = RecomputeRun.objects.get()
    assert run.status == "done" and run.requested_by == operator, worker.output()[-3000:]

    # The published leaderboard changed: the spammer's favourite is back at the bottom.
    order = leaderboard_order(page, base)
    assert order[0] == TASTE[0] and order[-1] == SPAM_FOR, order

    # Compare the snapshot before and the newest one.
    newest = Snapshot.objects.order_by("-created_at", "-id").first()
    assert newest.id != rigged_arena.id
    page.goto(f"{base}/admin/ratings/snapshot/")
    for snap_id in (rigged_arena.id, newest.id):
        page.locator(f'input.action-select[value="{snap_id}"]').check()
    run_action(page, "compare_two")
    expect(page.locator("#compare-summary")).to_contain_text(f"#{rigged_arena.id}")
    # Ranked as the compare page (and the leaderboard) ranks them: among established models.
    rank_before = next(r["rank"] for r in standings(rigged_arena.rows, registry()).values() if r["model"] == SPAM_FOR)
    rank_after = next(r["rank"] for r in standings(newest.rows, registry()).values() if r["model"] == SPAM_FOR)
    assert rank_after > rank_before
    breeze = page.locator(f'#compare-table tr[data-model="{SPAM_FOR}"]')
    expect(breeze.locator(".rank-change")).to_have_text(f"▼ {rank_after - rank_before}")
    rating = {snap: {r["model"]: r["rating"] for r in joined(snap.rows, registry())} for snap in (rigged_arena, newest)}
    change = rating[newest][SPAM_FOR] - rating[rigged_arena][SPAM_FOR]
    expect(breeze.locator(".rating-change")).to_have_text(f"{change:+.1f}")
    assert change < 0
    page.screenshot(path=shots / "admin-compare.png", full_page=True)

    # Every action is in the admin log, by the operator.
    entries = LogEntry.objects.filter(user=operator)
    assert entries.filter(action_flag=ADDITION, object_repr="nova-8b").exists()
    assert entries.filter(action_flag=CHANGE, change_message__startswith="Tested the connection").exists()
    assert entries.filter(change_message="Set status to deprecated.").count() == 1
    assert entries.filter(change_message="Excluded (spam).").count() == 100
    assert entries.filter(action_flag=ADDITION, object_id=str(run.id)).exists()
