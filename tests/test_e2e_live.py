"""Live battles in a real headless Chromium against the arena served as in
production (its ASGI application under uvicorn, tests/asgi_server.py) and a
real OpenAI-compatible HTTP server on 127.0.0.1: two answers
stream side by side, a second turn, a vote and the reveal; a failed side,
its retry; and no identity in anything the page received before the vote."""

from __future__ import annotations

import pytest

from arena.models import ArenaModel, Battle
from tests.fake_openai import FakeOpenAI
from votes.models import Vote

pytestmark = [pytest.mark.browser]

FIRST = " ".join(f"alpha{i}" for i in range(25))
SECOND = " ".join(f"beta{i}" for i in range(25))


TEE_STREAMS = """
window.__streams = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await realFetch(...args);
  if (!String(args[0]).endsWith("/stream/") || !response.body) return response;
  const [mine, copy] = response.body.tee();
  new Response(copy).text().then((text) => window.__streams.push(text));
  return new Response(mine, { status: response.status, headers: response.headers });
};
"""


@pytest.fixture
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def register(fake: FakeOpenAI, name: str, organization: str) -> ArenaModel:
    return ArenaModel.objects.create(
        name=name,
        display_name=name.title(),
        organization=organization,
        provider_kind=ArenaModel.Provider.OPENAI,
        provider_settings={"base_url": fake.base_url, "model": f"{name}-served", "timeout": 5},
    )


@pytest.fixture
def live_pair(fake, transactional_db):
    models = [register(fake, "saffron-12b", "Saffron Works"), register(fake, "indigo-3b", "Indigo Group")]
    fake.script("saffron-12b-served", turns=[f"Saffron says {FIRST}", f"Saffron again {SECOND}"], delay=0.04)
    fake.script("indigo-3b-served", turns=[f"Indigo says {FIRST}", f"Indigo again {SECOND}"], delay=0.04)
    return models


def test_two_answers_stream_side_by_side_then_a_second_turn_a_vote_and_the_reveal(
    desktop, asgi_server, live_pair, shots
):
    from playwright.sync_api import expect

    page = desktop.new_page()
    # Keep a copy of every byte the page receives: headers of every response,
    # bodies of ordinary ones, and the event streams teed inside the page (the
    # page still reads its half live), since Playwright can't hand out the
    # body of a fetch stream.
    page.add_init_script(TEE_STREAMS)
    received: list[bytes] = []
    page.on("response", lambda r: received.append("\n".join(f"{k}: {v}" for k, v in r.headers.items()).encode()))
    page.on(
        "requestfinished", lambda req: None if req.url.endswith("/stream/") else received.append(req.response().body())
    )
    page.goto(f"{asgi_server.url}/arena/")
    expect(page.locator("#label-a")).to_have_text("Model A")
    votes = page.locator("#vote-buttons button")

    page.fill("#prompt-input", "Tell me about rivers.")
    page.click("#send")

    # Both sides fill in while the stream runs; voting waits until both are done.
    side_a = page.locator('.turn >> nth=0 >> .answer[data-side="a"]')
    side_b = page.locator('.turn >> nth=0 >> .answer[data-side="b"]')
    expect(side_a).to_contain_text("says alpha")
    expect(side_b).to_contain_text("says alpha")
    assert "alpha24" not in side_a.inner_text() or "alpha24" not in side_b.inner_text()
    expect(votes.first).to_be_disabled()
    page.screenshot(path=shots / "live-streaming.png")
    expect(side_a).to_contain_text("alpha24")
    expect(side_b).to_contain_text("alpha24")
    expect(votes.first).to_be_enabled()

    page.fill("#prompt-input", "And what about lakes?")
    page.click("#send")
    second_a = page.locator('.turn >> nth=1 >> .answer[data-side="a"]')
    second_b = page.locator('.turn >> nth=1 >> .answer[data-side="b"]')
    expect(second_a).to_contain_text("beta24")
    expect(second_b).to_contain_text("beta24")
    expect(votes.first).to_be_enabled()

    battle = Battle.objects.get()
    assert len(battle.turns) == 2 and battle.status == Battle.Status.READY
    page.wait_for_function("window.__streams.length === 2")
    streams = page.evaluate("window.__streams")
    assert all("event: end" in body for body in streams)
    prevote = (b"\n".join(received) + "\n".join(streams).encode()).lower()
    for m in ArenaModel.objects.all():
        for secret in (m.name, m.display_name, m.organization, m.provider_settings["model"], "127.0.0.1"):
            assert secret.lower().encode() not in prevote, secret
    winner_name = battle.model_a.name

    page.click('[data-winner="a"]')

    expect(page.locator("#reveal-a")).to_have_text(f"Model A: {winner_name}")
    expect(page.locator("#reveal-b")).to_have_text(f"Model B: {battle.model_b.name}")
    expect(page.locator("#next")).to_be_visible()
    page.screenshot(path=shots / "live-reveal.png")
    vote = Vote.objects.get()
    assert (vote.winner, vote.turns, vote.model_a.name) == ("a", 2, winner_name)


def test_a_failed_side_offers_a_retry_that_completes_the_battle(desktop, asgi_server, fake, live_pair, shots):
    from playwright.sync_api import expect

    broken = fake.script("indigo-3b-served", status=502)
    page = desktop.new_page()
    page.goto(f"{asgi_server.url}/arena/")
    page.fill("#prompt-input", "Hello?")
    page.click("#send")

    expect(page.locator(".side.failed .error")).to_contain_text("failed: the model's service returned an error")
    expect(page.locator("#status")).to_contain_text("can't be voted on")
    expect(page.locator("#retry")).to_be_visible()
    expect(page.locator("#vote-buttons button").first).to_be_disabled()
    page.screenshot(path=shots / "live-failed.png")
    assert Battle.objects.get().status == Battle.Status.FAILED

    broken.status = 200
    broken.turns = ["Indigo is back."]
    page.click("#retry")

    expect(page.locator(".side.failed")).to_have_count(0)
    expect(page.locator("#vote-buttons button").first).to_be_enabled()
    page.click('[data-winner="tie"]')
    expect(page.locator("#reveal-b")).to_be_visible()
    assert Vote.objects.get().winner == "tie"
