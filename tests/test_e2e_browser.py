"""The pages in a real headless Chromium (Debian's, driven by Playwright),
against pytest-django's live server and, for the leaderboard, a real worker.

Screenshots land in docs/screenshots/ for the README and for a human eye.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest

from arena.models import Battle
from ratings.models import Snapshot
from ratings.selectors import leaderboard_rows, snapshot_view
from tests.arena.factories import answer_set_with
from tests.arena.helpers import DEMO_DIR, demo_prompts
from tests.services import PHONE, wait_for

pytestmark = [pytest.mark.browser]


def plain(text: str) -> str:
    """Markdown source or rendered text, without emphasis marks and line breaks."""
    return " ".join(re.sub(r"[*`_#>]", "", text).split())


def identities() -> set[str]:
    found = set()
    for m in json.loads((DEMO_DIR / "models.json").read_text()):
        found |= {m["name"].lower(), m["display_name"].lower(), m["organization"].lower()}
    return found


def test_vote_reveal_and_leaderboard_in_the_browser(desktop, live_server, demo_models, celery_worker_process, shots):
    from playwright.sync_api import expect

    page = desktop.new_page()
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.goto(f"{live_server.url}/arena/")

    # Before the vote: a prompt, two answers labelled Model A / Model B, no identities anywhere.
    expect(page.locator("#label-a")).to_have_text("Model A")
    expect(page.locator("#label-b")).to_have_text("Model B")
    prompt = plain(page.locator("#prompt").inner_text())
    assert any(plain(p)[:50] in prompt for p in demo_prompts()), prompt
    assert page.locator("#answer-a").inner_text().strip() and page.locator("#answer-b").inner_text().strip()
    for winner in ("a", "b", "tie", "both_bad"):
        expect(page.locator(f'[data-winner="{winner}"]')).to_be_visible()
    expect(page.locator("#next")).to_be_hidden()
    expect(page.locator("#reveal-a")).to_be_hidden()
    page.wait_for_load_state("networkidle")
    assert {urlsplit(r.url).netloc for r in responses} == {urlsplit(live_server.url).netloc}
    assert not [r.url for r in responses if "leaderboard" in r.url]
    secrets = identities()
    for r in responses:
        raw = (r.body() + json.dumps(r.all_headers()).encode()).lower()
        assert not [s for s in secrets if s.encode() in raw], r.url
    assert not [s for s in secrets if s in page.content().lower()]
    page.screenshot(path=shots / "arena.png", full_page=True)

    # Vote: both names are revealed and "Next battle" appears.
    battle_id = page.locator("#battle").get_attribute("data-battle")
    battle = Battle.objects.select_related("model_a", "model_b").get(id=battle_id)
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#reveal-a")).to_be_visible()
    name_a = page.locator("#reveal-a").inner_text().removeprefix("Model A: ")
    name_b = page.locator("#reveal-b").inner_text().removeprefix("Model B: ")
    assert (name_a, name_b) == (battle.model_a.name, battle.model_b.name)
    assert name_a != name_b
    expect(page.get_by_role("button", name="Next battle")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("stored")
    expect(page.locator("#status")).to_contain_text(f"Model A: {name_a} · Model B: {name_b}")
    expect(page.locator('[data-winner="b"]')).to_be_disabled()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=shots / "arena-revealed.png", full_page=True)

    # A few more battles, each through "Next battle".
    for winner in ["b", "tie", "a", "both_bad", "a"]:
        battle_before = page.locator("#battle").get_attribute("data-battle")
        page.get_by_role("button", name="Next battle").click()
        page.wait_for_function(f"document.getElementById('battle').dataset.battle !== '{battle_before}'")
        expect(page.locator("#reveal-a")).to_be_hidden()
        page.locator(f'[data-winner="{winner}"]').click()
        expect(page.locator("#reveal-b")).to_be_visible()

    # The worker computes; the leaderboard shows the models.
    assert wait_for(lambda: Snapshot.objects.filter(vote_count=6).exists(), timeout=30), celery_worker_process.output()
    page.goto(f"{live_server.url}/leaderboard/")
    # Six votes: every model is under the vote minimum, so all are in the "preliminary" table.
    headers = [h.strip() for h in page.locator("#preliminary thead th").all_text_contents()]
    assert headers == ["Rank (UB)", "Model", "Rating", "95% CI", "Votes", "Organization", "License"]
    rows = page.locator("#preliminary tbody tr")
    snapshot = Snapshot.objects.order_by("-created_at", "-id").first()
    # As the leaderboard lists them: every model unranked (rank "–"), by rating.
    listed = leaderboard_rows(snapshot_view(snapshot, "overall", False))
    assert rows.count() == len(listed) >= 2
    orgs = {m.name: m.organization for m in demo_models}
    total_votes = 0
    for i, expected in enumerate(listed):
        rank, model, rating, ci, votes, org, _ = (c.strip() for c in rows.nth(i).locator("td").all_text_contents())
        model = rows.nth(i).locator("td.model a").inner_text().strip()  # the cell also lists the caveats
        assert (model, rank, int(votes)) == (expected["model"], "–", expected["battles"])
        assert org == orgs[model]
        lower, upper = (int(x) for x in ci.replace("–", " ").split())
        for shown, stored in ((rating, "rating"), (lower, "lower"), (upper, "upper")):
            assert abs(int(shown) - expected[stored]) <= 0.5, (model, stored, shown, expected[stored])
        total_votes += int(votes)
    assert total_votes == 12
    meta = page.locator("#snapshot-meta").inner_text()
    assert "6 votes" in meta and "UTC" in meta
    assert page.locator("#snapshot-meta time").get_attribute("datetime")
    page.screenshot(path=shots / "leaderboard.png", full_page=True)


def test_arena_works_at_phone_width(phone, live_server, demo_models, shots):
    from playwright.sync_api import expect

    page = phone.new_page()
    page.goto(f"{live_server.url}/arena/")
    expect(page.locator("#answer-b")).to_be_visible()

    # No sideways scrolling; the answers are stacked, each (almost) full width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    a, b = page.locator("#side-a").bounding_box(), page.locator("#side-b").bounding_box()
    assert b["y"] >= a["y"] + a["height"], (a, b)
    assert abs(a["x"] - b["x"]) < 1 and a["width"] > 0.85 * PHONE["width"]
    # The vote buttons are on screen without scrolling, inside the viewport.
    for winner in ("a", "b", "tie", "both_bad"):
        box = page.locator(f'[data-winner="{winner}"]').bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], (winner, box)
        assert box["height"] >= 40, "touch targets need room"
    page.screenshot(path=shots / "arena-phone.png", full_page=False)

    page.locator('[data-winner="tie"]').tap()
    expect(page.locator("#reveal-a")).to_be_visible()
    # Without scrolling, the result and "Next battle" are on screen.
    for selector in ("#next", "#status"):
        expect(page.locator(selector)).to_be_visible()
        box = page.locator(selector).bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], (selector, box)
    expect(page.locator("#status")).to_contain_text("Model A: ")
    page.screenshot(path=shots / "arena-phone-revealed.png", full_page=False)


def test_script_in_an_answer_is_shown_as_text_and_never_runs(desktop, live_server, transactional_db):
    from playwright.sync_api import expect

    answer_set_with(
        {
            "hostile-a": {
                "Say hi": "Hi!\n\n<script>window.__pwned = 1; alert('xss')</script>\n\n"
                '<img src="x" onerror="window.__pwned = 2">\n\n[click](javascript:window.__pwned=3)'
            },
            "hostile-b": {"Say hi": '<svg onload="window.__pwned = 4"></svg> **hello**'},
        }
    )
    page = desktop.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/arena/")
    page.wait_for_load_state("networkidle")

    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    shown = "\n".join(page.locator(".answer").all_inner_texts())  # sides are shuffled
    assert "<script>window.__pwned = 1; alert('xss')</script>" in shown
    assert '<img src="x" onerror="window.__pwned = 2">' in shown
    assert '<svg onload="window.__pwned = 4"></svg>' in shown
    assert page.locator(".answer script, .answer img, .answer svg, .answer iframe").count() == 0
    assert page.locator('.answer a[href^="javascript"]').count() == 0
    expect(page.locator(".answer strong")).to_have_text("hello")

    page.locator('[data-winner="b"]').click()
    expect(page.locator("#reveal-b")).to_be_visible()
    assert page.evaluate("window.__pwned") is None


def test_a_refused_vote_is_explained_on_the_page(desktop, live_server, demo_models):
    from playwright.sync_api import expect

    page = desktop.new_page()
    page.goto(f"{live_server.url}/arena/")
    battle_id = page.locator("#battle").get_attribute("data-battle")
    # The same voter votes from another tab first (same cookies, same CSRF token).
    token = next(c["value"] for c in desktop.cookies() if c["name"] == "csrftoken")
    assert (
        page.request.post(
            f"{live_server.url}/api/v1/battles/{battle_id}/vote/", data={"winner": "a"}, headers={"X-CSRFToken": token}
        ).status
        == 201
    )

    page.locator('[data-winner="b"]').click()

    expect(page.locator("#status")).to_contain_text("Vote not saved: this battle already has a vote")
    assert "[object Object]" not in page.locator("#status").inner_text()
    expect(page.locator("#next")).to_be_visible()


def test_no_battle_page_in_the_browser(desktop, live_server, transactional_db, artifacts_dir):
    from playwright.sync_api import expect

    page = desktop.new_page()
    response = page.goto(f"{live_server.url}/arena/")
    assert response.status == 503
    expect(page.get_by_role("heading", name="No battle available right now")).to_be_visible()
    expect(page.locator("[data-winner]")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "arena-empty.png")


def test_api_docs_render_offline(desktop, live_server, transactional_db):
    from playwright.sync_api import expect

    ours = urlsplit(live_server.url).netloc
    outside = []

    def only_ours(route):
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page = desktop.new_page()
    page.route("**/*", only_ours)
    page.goto(f"{live_server.url}/api/docs/")

    expect(page.get_by_text("Open an anonymous battle")).to_be_visible()
    expect(page.get_by_text("/api/v1/battles/{battle_id}/vote/")).to_be_visible()
    assert outside == []
