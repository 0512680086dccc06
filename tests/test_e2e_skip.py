"""The Skip button in a real browser: the battle ends unvoted, nothing is
revealed, and the reloaded page shows a new battle."""

from __future__ import annotations

import pytest

from arena.models import Battle
from tests.arena.factories import answer_set_with
from votes.models import Vote

pytestmark = [pytest.mark.browser]


def test_skip_shows_a_new_battle_and_reveals_nothing(desktop, live_server, transactional_db):
    from playwright.sync_api import expect

    answer_set_with(
        {
            name: {f"Question {q}?": f"Answer {q} of the {k}th contestant." for q in range(3)}
            for k, name in enumerate(["alpha-model", "beta-model", "gamma-model"], 1)
        }
    )
    page = desktop.new_page()
    page.goto(f"{live_server.url}/arena/")
    first = page.locator("#battle").get_attribute("data-battle")
    first_prompt = page.locator("#prompt").inner_text()
    skip = page.locator('[data-action="skip"]')
    expect(skip).to_be_visible()

    skip.click()

    expect(page.locator("#battle")).not_to_have_attribute("data-battle", first)
    second = page.locator("#battle").get_attribute("data-battle")
    assert page.locator("#prompt").inner_text() != first_prompt  # the rotation moved on
    assert Battle.objects.get(id=first).status == Battle.Status.SKIPPED
    assert not Vote.objects.exists()
    html = page.content().lower()
    assert "alpha-model" not in html and "beta-model" not in html and "gamma-model" not in html
    # Reloading keeps the new battle; after a vote the skip button goes away.
    page.reload()
    assert page.locator("#battle").get_attribute("data-battle") == second
    page.locator('[data-winner="tie"]').click()
    expect(page.locator("#reveal-a")).to_be_visible()
    expect(skip).to_be_hidden()
    assert str(Vote.objects.get().battle_id) == second
