"""The judges on the leaderboard page in a real headless Chromium (Debian's,
through Playwright), JavaScript off: the source selector switches between
people's board and a judge's own, the agreement panel shows each judge's
figures, and a newcomer only a judge has rated is listed with the judge's
rating marked as such."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from arena.models import ArenaModel, Judge
from ratings import judges as judge_boards
from ratings.services import recompute_publish
from tests.arena.factories import ArenaModelFactory, BattleFactory
from tests.ratings.test_ratings_api import ORDER, add_votes
from votes.models import JudgeVote

pytestmark = [pytest.mark.browser]


@pytest.fixture
def judged(demo_models):
    add_votes(300)
    recompute_publish()
    judge = Judge.objects.create(
        name="rev-judge", provider_settings={"base_url": "http://127.0.0.1:9/v1", "model": "x"}
    )
    models = {m.name: m for m in ArenaModel.objects.filter(name__in=ORDER)}
    ranked = [models[n] for n in reversed(ORDER)] + [ArenaModelFactory(name="newcomer-1b", organization="New Org")]
    for i, better in enumerate(ranked):
        for worse in ranked[i + 1 :]:
            for a, b, verdict in [(better, worse, "a")] * 6 + [(worse, better, "a")]:  # 35 verdicts a model
                battle = BattleFactory(model_a=a, model_b=b, status="voted")
                JudgeVote.objects.create(judge=judge, battle=battle, model_a=a, model_b=b, status="done",
                                         verdict=verdict, verdict_ab=verdict, verdict_ba=verdict)  # fmt: skip
    judge_boards.publish_boards()
    return judge


def models_in(page, table: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#{table} tbody tr td.model a").all_text_contents()]


def test_source_selector_agreement_panel_and_judge_rated_newcomer(new_context, live_server, judged, shots):
    from playwright.sync_api import expect

    page = new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False).new_page()
    page.goto(f"{live_server.url}/leaderboard/")
    expect(page.locator('#sources .chip[aria-current="page"]')).to_have_text("People")
    assert models_in(page, "leaderboard") == ORDER
    # The newcomer, unrated by people, appears with the judge's rating, marked.
    newcomer = page.locator('#judge-preliminary tr[data-model="newcomer-1b"]')
    expect(newcomer.locator(".judge-tag")).to_have_text("judge rating (rev-judge)")
    expect(newcomer).to_have_attribute("data-source", "judge:rev-judge")
    expect(page.locator("#judge-preliminary-note")).to_contain_text("not comparable")
    # The agreement panel: the judge's figures as /api/v1/judges/ gives them.
    row = page.locator('#judges tr[data-judge="rev-judge"]')
    expect(row.locator('[data-figure="position-bias"]')).to_have_text("0%")
    expect(row.locator('[data-figure="rank-correlation"]')).to_have_text("-1.00")
    expect(row.locator('[data-figure="kappa"]')).to_have_text("–")  # no battle voted by both
    page.screenshot(path=shots / "leaderboard-judges.png", full_page=True)

    # A judge's own board, one plain link away.
    page.locator('#sources .chip[data-source="judge:rev-judge"]').click()
    assert parse_qs(urlsplit(page.url).query) == {"source": ["judge:rev-judge"]}
    expect(page.get_by_role("heading", level=1)).to_have_text("Leaderboard: judge rev-judge")
    expect(page.locator("#snapshot-meta")).to_contain_text("not from people")
    expect(page.locator('#sources .chip[aria-current="page"]')).to_have_text("Judge rev-judge")
    assert models_in(page, "leaderboard") == [*reversed(ORDER), "newcomer-1b"]
    expect(page.locator('#judges tr[data-judge="rev-judge"]')).to_be_visible()
    page.screenshot(path=shots / "leaderboard-judge-board.png", full_page=True)

    page.locator('#sources .chip[data-source="human"]').click()
    assert urlsplit(page.url).query == ""
    assert models_in(page, "leaderboard") == ORDER
    assert page.locator("script").count() == 0
