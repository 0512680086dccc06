"""Skipping a ready live battle in a real browser: the Skip button appears
once both answers are in, ends the battle unvoted and offers a new prompt."""

from __future__ import annotations

import pytest

from arena.models import Battle
from tests.test_e2e_live import fake, live_pair  # noqa: F401 - the fixtures
from votes.models import Vote

pytestmark = [pytest.mark.browser]


def test_a_ready_live_battle_can_be_skipped(desktop, live_server, live_pair):
    from playwright.sync_api import expect

    page = desktop.new_page()
    page.goto(f"{live_server.url}/arena/")
    skip = page.locator('[data-action="skip"]')
    expect(skip).to_be_hidden()  # nothing to skip before a battle exists

    page.fill("#prompt-input", "Tell me about rivers.")
    page.click("#send")
    expect(page.locator('[data-winner="a"]')).to_be_enabled(timeout=15_000)
    expect(skip).to_be_visible()
    battle_id = page.locator("#live").get_attribute("data-battle")

    skip.click()

    expect(page.locator("#live")).to_have_attribute("data-battle", "")
    expect(page.locator("#prompt-input")).to_be_visible()
    assert Battle.objects.get(id=battle_id).status == Battle.Status.SKIPPED
    assert not Vote.objects.exists()
    assert "saffron" not in page.content().lower() and "indigo" not in page.content().lower()
