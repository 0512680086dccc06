"""The leaderboard pages in a real headless Chromium (Debian's, driven by
Playwright) against pytest-django's live server, with JavaScript switched off:
the category selector, the toggles and the plots are plain links and inline
SVG, so they must work without it.

The data goes in the way real votes do (a battle file through the vote
importer, then ratings.services.recompute_publish). Screenshots land in
test-artifacts/screenshots/, or in docs/screenshots/ with ARENA_SCREENSHOTS=docs.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from arena.models import ArenaModel
from tests.ratings.board_data import ORDER, RARE, import_and_publish
from tests.services import PHONE

pytestmark = [pytest.mark.browser]


@pytest.fixture
def no_script(new_context):
    """A desktop browser with JavaScript disabled."""
    return new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)


@pytest.fixture
def phone(new_context):
    """A phone without JavaScript."""
    return new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, java_script_enabled=False)


@pytest.fixture
def snapshots(demo_models, tmp_path):
    """breeze-3b deprecated, dune-1b in a few battles only; four snapshots
    (votes arriving in batches) for the history."""
    ArenaModel.objects.filter(name="breeze-3b").update(status=ArenaModel.Status.DEPRECATED)
    published = [import_and_publish(tmp_path, 120, seed=1)]
    for k in range(1, 4):
        published.append(import_and_publish(tmp_path, 80, seed=1 + k, rare=0, start=10_000 * k))
    return published


def table_models(page, table: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#{table} tbody tr td.model a").all_text_contents()]


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_leaderboard_views_toggles_and_plots_without_javascript(no_script, live_server, snapshots, shots):
    from playwright.sync_api import expect

    newest = snapshots[-1]
    ours = urlsplit(live_server.url).netloc
    requests: list[str] = []
    page = no_script.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live_server.url}/leaderboard/")

    # Overall: the ranked table without the deprecated model, dune-1b apart as preliminary.
    expect(page.locator("#leaderboard thead th")).to_have_text(
        ["Rank (UB)", "Model", "Rating", "95% CI", "Votes", "Organization", "License"]
    )
    assert table_models(page, "leaderboard") == [m for m in ORDER if m != "breeze-3b"]
    expect(page.get_by_role("heading", name="Preliminary")).to_be_visible()
    assert table_models(page, "preliminary") == [RARE]
    ember = page.locator("#leaderboard tbody tr").first.locator("td")
    expect(ember.nth(5)).to_have_text("Ember Systems")
    expect(ember.nth(6)).to_have_text("Proprietary")
    for plot in ("#plot-ratings", "#plot-winrate", "#plot-count"):
        expect(page.locator(plot)).to_be_visible()
    expect(page.locator("#plot-ratings-narrow")).to_be_hidden()
    box = page.locator("#plot-ratings").bounding_box()
    assert box["width"] > 600 and box["height"] > 100, box
    # The cells' <title>s are the hover text: the win rate and the number of battles.
    expect(page.locator("#plot-winrate g.cell title").first).to_contain_text("% of the points in")
    expect(page.locator("#snapshot-audit")).to_contain_text(newest.fingerprint)
    expect(page.locator("#audit-votes")).to_have_text(str(newest.vote_count))
    assert page.locator("script").count() == 0
    page.screenshot(path=shots / "leaderboard-overall.png", full_page=True)

    # Category: a plain link; the table and the plots follow.
    overall_votes = int(page.locator("#leaderboard tbody tr").first.locator("td").nth(4).inner_text())
    page.get_by_role("link", name="Coding").click()
    assert query(page) == {"category": ["coding"]}
    expect(page.get_by_role("heading", level=1)).to_have_text("Leaderboard: Coding")
    expect(page.locator('.chip[aria-current="page"]')).to_contain_text("Coding")
    coding_votes = int(page.locator("#leaderboard tbody tr").first.locator("td").nth(4).inner_text())
    assert 0 < coding_votes < overall_votes
    expect(page.locator("#toggle-style")).to_have_attribute("aria-disabled", "true")
    page.screenshot(path=shots / "leaderboard-coding.png", full_page=False)

    # Style control (Overall only): the toggle turns on, the coefficients are explained.
    page.locator(".chip", has_text="Overall").click()
    page.locator("#toggle-style").click()
    assert query(page) == {"style_control": ["true"]}
    expect(page.locator("#toggle-style")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#style-note")).to_contain_text("list items")
    expect(page.locator("#snapshot-meta")).to_contain_text("Overall, style controlled")
    expect(page.locator('.chip.disabled[data-category="coding"]')).to_be_visible()
    page.screenshot(path=shots / "leaderboard-style-control.png", full_page=False)

    # Deprecated models: hidden until toggled; the style setting is kept.
    page.locator("#toggle-deprecated").click()
    assert query(page) == {"style_control": ["true"], "include_deprecated": ["true"]}
    expect(page.locator("#toggle-deprecated")).to_have_attribute("aria-checked", "true")
    expect(page.locator('tr[data-model="breeze-3b"] .tag')).to_have_text("deprecated")
    assert "breeze-3b" in table_models(page, "leaderboard") + table_models(page, "preliminary")
    page.locator("#toggle-style").click()
    assert query(page) == {"include_deprecated": ["true"]}
    expect(page.locator('#plot-ratings g[data-model="breeze-3b"]')).to_have_count(1)

    # A model's page: its rating over the snapshots, as a line with a band.
    page.locator("#leaderboard").get_by_role("link", name="ember-20b").click()
    assert urlsplit(page.url).path == "/leaderboard/models/ember-20b/"
    expect(page.get_by_role("heading", level=1)).to_have_text("ember-20b")
    expect(page.locator("#plot-history")).to_be_visible()
    points = page.locator("#plot-history g.point")
    expect(points).to_have_count(4)
    assert [points.nth(k).get_attribute("data-snapshot") for k in range(4)] == [str(s.id) for s in snapshots]
    expect(page.locator("#plot-history polygon.band")).to_have_count(1)
    expect(page.locator("#opponents tbody tr")).to_have_count(4)
    page.screenshot(path=shots / "leaderboard-model.png", full_page=True)

    # The model's coding history is one click away.
    page.locator("#model-ratings").get_by_role("link", name="Coding").click()
    assert query(page) == {"category": ["coding"]}
    expect(page.locator("#history-heading")).to_contain_text("Coding")
    expect(page.locator("#plot-history g.point")).to_have_count(4)

    assert {urlsplit(u).netloc for u in requests} == {ours}
    assert not [u for u in requests if u.endswith(".js")]


def test_unknown_category_in_the_browser_is_a_404_page_with_the_way_back(no_script, live_server, snapshots):
    from playwright.sync_api import expect

    page = no_script.new_page()
    response = page.goto(f"{live_server.url}/leaderboard/?category=poetry")
    assert response.status == 404
    expect(page.get_by_role("heading", name="No such leaderboard")).to_be_visible()
    page.get_by_role("link", name="Coding").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Leaderboard: Coding")
    response = page.goto(f"{live_server.url}/leaderboard/?include_deprecated=sometimes")
    assert response.status == 400
    expect(page.locator("#problem")).to_contain_text("include_deprecated must be true or false")


def test_leaderboard_fits_a_phone(phone, live_server, snapshots, shots):
    from playwright.sync_api import expect

    page = phone.new_page()
    page.goto(f"{live_server.url}/leaderboard/")
    expect(page.locator("#leaderboard")).to_be_visible()
    # The page itself never scrolls sideways; the wide table and plots scroll in their own boxes.
    for selector in ("main", ".controls", ".table-wrap", "#figure-ratings", "#figure-winrate", "#snapshot-audit"):
        box = page.locator(selector).first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, (selector, box)
    # Rank, model, rating, interval and votes fit without scrolling the table.
    table = page.locator("#leaderboard").bounding_box()
    assert table["x"] + table["width"] <= PHONE["width"], table
    expect(page.locator("#leaderboard th.license")).to_be_hidden()
    chip = page.locator(".chip").first.bounding_box()
    assert chip["height"] >= 28
    page.screenshot(path=shots / "leaderboard-phone.png", full_page=False)
    # The ratings plot drawn for a narrow screen, whole and readable without scrolling.
    expect(page.locator("#plot-ratings")).to_be_hidden()
    narrow = page.locator("#plot-ratings-narrow").bounding_box()
    assert narrow["x"] >= 0 and narrow["x"] + narrow["width"] <= PHONE["width"], narrow
    assert narrow["width"] >= 0.8 * 400, narrow  # shrunk by at most a fifth: 12 px text stays ≥ 9.6 px

    page.locator("#leaderboard").get_by_role("link", name="cobalt-13b").click()
    expect(page.locator("#plot-history")).to_be_hidden()
    history = page.locator("#plot-history-narrow").bounding_box()
    assert history["x"] >= 0 and history["x"] + history["width"] <= PHONE["width"], history
    page.screenshot(path=shots / "leaderboard-model-phone.png", full_page=False)


def test_an_unranked_model_shows_its_caveat_in_words_on_a_phone(phone, live_server, transactional_db, settings, shots):
    """After 20 votes a model with one battle (which it won) is not ranked:
    it sits in the preliminary table with the reason written out, visible
    on a phone (no hover), not at rank 1 above models with a dozen battles."""
    from playwright.sync_api import expect

    from ratings.services import recompute_publish
    from tests.arena.factories import ArenaModelFactory, VoteFactory

    settings.RATINGS_MIN_VOTES = 5
    x, y, z = (ArenaModelFactory(name=n) for n in ("xenon-1", "yarrow-2", "zinc-3"))
    for (a, b), winners in {(x, y): "aaaaba", (y, z): "aaabat", (z, x): "bbbab"}.items():
        for w in winners:
            VoteFactory(pair_a=a, pair_b=b, winner={"t": "tie"}.get(w, w))
    VoteFactory(pair_a=ArenaModelFactory(name="newcomer-1"), pair_b=z, winner="a")
    recompute_publish()

    page = phone.new_page()
    page.goto(f"{live_server.url}/leaderboard/")
    assert table_models(page, "leaderboard") == ["xenon-1", "yarrow-2", "zinc-3"]
    assert table_models(page, "preliminary") == ["newcomer-1"]
    row = page.locator('#preliminary tr[data-model="newcomer-1"]')
    expect(row.locator("td.rank")).to_have_text("–")
    for words in ("only 1 vote; a rank needs 5", "rated from a single battle", "won every battle"):
        caveat = row.locator(".caveats li", has_text=words)
        expect(caveat).to_be_visible()
        box = caveat.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (words, box)
    row.scroll_into_view_if_needed()
    page.screenshot(path=shots / "leaderboard-preliminary-phone.png", full_page=False)
