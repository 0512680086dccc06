"""The leaderboard page and the model page through Django's test client, on
snapshots the real pipeline published (vote import, then recompute_publish):
the numbers match the JSON API, parameters work as plain links, bad input is
a 400 or 404 page, and the inline SVG plots are well-formed XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import unescape
from html.parser import HTMLParser

import pytest

from arena.models import ArenaModel
from ratings import views
from ratings.models import Snapshot, SnapshotView
from ratings.services import recompute_publish
from tests.ratings.board_data import ORDER, RARE, import_and_publish

SVG = "{http://www.w3.org/2000/svg}"
HEADERS = ["Rank (UB)", "Model", "Rating", "95% CI", "Votes", "Organization", "License"]


class Page(HTMLParser):
    """Tables by id (header texts, row cell texts), elements with their attributes, ids present."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.ids: set[str] = set()
        self.repeated_ids: set[str] = set()
        self.elements: list[tuple[str, dict]] = []
        self._table = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_head = False
        self._in_caveats = False
        self.caveats: dict[str, list[str]] = {}  # model → its caveats, read apart from the Model cell
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "ul" and a.get("class") == "caveats" and self._row is not None:
            self._in_caveats = True
            self.caveats[" ".join("".join(self._cell or []).split())] = []
            return
        if "id" in a:
            if a["id"] in self.ids:
                self.repeated_ids.add(a["id"])
            self.ids.add(a["id"])
        if tag == "table" and a.get("id"):
            self._table = self.tables.setdefault(a["id"], {"head": [], "rows": []})
        elif self._table is not None:
            if tag == "thead":
                self._in_head = True
            elif tag == "tr" and not self._in_head:
                self._row = []
            elif tag in ("td", "th"):
                self._cell = []

    def handle_endtag(self, tag):
        if self._table is None:
            return
        if tag == "ul" and self._in_caveats:
            self._in_caveats = False
            return
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            (self._table["head"] if self._in_head else self._row).append(text)
            self._cell = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "tr" and self._row is not None:
            self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_caveats:
            if data.strip():
                self.caveats[next(reversed(self.caveats))].append(data.strip())
            return
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table_id: str) -> list[dict]:
        table = self.tables.get(table_id)
        return [dict(zip(table["head"], r, strict=True)) for r in table["rows"]] if table else []

    def find(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def model(row: dict) -> str:
    """The model cell without its "deprecated" tag."""
    return row["Model"].removesuffix(" deprecated")


def get(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.content[:500])
    return response.content.decode()


def svgs(html: str) -> dict[str, ET.Element]:
    """Every inline <svg> of the page, parsed as XML (a parse error fails the test)."""
    found = {}
    for chunk in re.findall(r"<svg\b.*?</svg>", html, re.S):
        root = ET.fromstring(chunk)
        found[root.get("id")] = root
    return found


@pytest.fixture
def published(demo_models, tmp_path):
    return import_and_publish(tmp_path, 240)


def test_before_any_snapshot_the_page_says_there_are_no_votes_yet(client, db):
    html = get(client, "/leaderboard/")
    assert "No votes yet" in html
    assert "<table" not in html and "<svg" not in html
    assert "snapshot-audit" not in html


def test_table_columns_and_order_follow_the_votes(client, published):
    page = Page(get(client, "/leaderboard/"))
    assert page.tables["leaderboard"]["head"] == HEADERS
    assert page.tables["preliminary"]["head"] == HEADERS
    assert [r["Model"] for r in page.rows("leaderboard")] == ORDER
    assert [r["Model"] for r in page.rows("preliminary")] == [RARE]
    atlas = ArenaModel.objects.get(name="atlas-7b")
    row = next(r for r in page.rows("leaderboard") if r["Model"] == "atlas-7b")
    assert (row["Organization"], row["License"]) == (atlas.organization, atlas.license)
    assert sum(int(r["Votes"]) for r in page.rows("leaderboard") + page.rows("preliminary")) == 2 * published.vote_count


@pytest.mark.parametrize(
    "query",
    ["", "?category=coding", "?category=no_ties", "?style_control=true", "?include_deprecated=true",
     "?category=coding&include_deprecated=1"],
)  # fmt: skip
def test_page_shows_the_same_numbers_as_the_api(client, published, query):
    ArenaModel.objects.filter(name="breeze-3b").update(status=ArenaModel.Status.DEPRECATED)
    recompute_publish(force=True)
    page = Page(get(client, f"/leaderboard/{query}"))
    api = client.get(f"/api/v1/leaderboard/{query}").json()["models"]
    assert [model(r) for r in page.rows("leaderboard")] == [m["model"] for m in api if not m["preliminary"]]
    assert [model(r) for r in page.rows("preliminary")] == [m["model"] for m in api if m["preliminary"]]
    shown = {model(r): r for r in page.rows("leaderboard") + page.rows("preliminary")}
    for m in api:
        row = shown[m["model"]]
        lower, upper = (int(x) for x in row["95% CI"].split("–"))
        assert row["Rank (UB)"] == ("–" if m["rank"] is None else str(m["rank"])) and int(row["Votes"]) == m["battles"]
        for text, value in ((row["Rating"], m["rating"]), (lower, m["lower"]), (upper, m["upper"])):
            assert abs(int(text) - value) <= 0.5
        assert (row["Organization"], row["License"]) == (m["organization"], m["license"])


def test_preliminary_models_follow_the_vote_minimum(client, published, settings):
    every = [m["model"] for m in client.get("/api/v1/leaderboard/").json()["models"]]
    assert sorted(every) == sorted([*ORDER, RARE])
    settings.RATINGS_MIN_VOTES = 1
    page = Page(get(client, "/leaderboard/"))
    every = [m["model"] for m in client.get("/api/v1/leaderboard/").json()["models"]]
    assert [r["Model"] for r in page.rows("leaderboard")] == every
    assert "preliminary" not in page.tables and "preliminary-heading" not in page.ids

    settings.RATINGS_MIN_VOTES = 10_000
    page = Page(get(client, "/leaderboard/"))
    assert "leaderboard" not in page.tables and "no-ranked" in page.ids
    # Unranked rows are listed by rating.
    by_rating = [m["model"] for m in client.get("/api/v1/leaderboard/").json()["models"]]
    assert sorted(by_rating) == sorted(every) and all(
        m["rank"] is None for m in client.get("/api/v1/leaderboard/").json()["models"]
    )
    assert [r["Model"] for r in page.rows("preliminary")] == by_rating
    assert all(
        page.caveats[name] == [f"only {n} votes; a rank needs 10000"]
        for name, n in ((m["model"], m["battles"]) for m in client.get("/api/v1/leaderboard/").json()["models"])
    )


def test_deprecated_models_are_hidden_until_toggled(client, published):
    ArenaModel.objects.filter(name="breeze-3b").update(status=ArenaModel.Status.DEPRECATED)
    recompute_publish(force=True)
    html = get(client, "/leaderboard/")
    page = Page(html)
    assert "breeze-3b" not in {r["Model"] for r in page.rows("leaderboard") + page.rows("preliminary")}
    toggle = page.find("a", id="toggle-deprecated")[0]
    assert toggle["aria-checked"] == "false" and toggle["href"] == "/leaderboard/?include_deprecated=true"
    assert "1 deprecated model hidden" in html

    page = Page(get(client, toggle["href"]))
    row = next(r for r in page.rows("leaderboard") if r["Model"].startswith("breeze-3b"))
    assert row["Model"] == "breeze-3b deprecated"
    back = page.find("a", id="toggle-deprecated")[0]
    assert back["aria-checked"] == "true" and back["href"] == "/leaderboard/"


def test_category_links_cover_every_view_and_keep_the_other_settings(client, published):
    categories = client.get("/api/v1/categories/").json()["categories"]
    plain = {c["key"]: c for c in categories if not c["style_control"]}
    assert {"overall", "coding", "no_ties"} <= set(plain)
    page = Page(get(client, "/leaderboard/?include_deprecated=true"))
    chips = {a["data-category"]: a for a in page.find("a", **{"class": "chip"})}
    assert set(chips) == set(plain)
    assert chips["overall"].get("aria-current") == "page"
    assert chips["coding"]["href"] == "/leaderboard/?category=coding&include_deprecated=true"

    html = get(client, chips["coding"]["href"])
    assert "<h1>Leaderboard: Coding</h1>" in html
    assert f"Coding · {plain['coding']['votes']} votes" in html
    # Style control exists for Overall only: the toggle is inert in Coding.
    assert Page(html).find("span", id="toggle-style")[0]["aria-disabled"] == "true"


def test_style_control_toggle_shows_the_style_view_and_its_coefficients(client, published):
    page = Page(get(client, "/leaderboard/"))
    toggle = page.find("a", id="toggle-style")[0]
    assert toggle["aria-checked"] == "false" and toggle["href"] == "/leaderboard/?style_control=true"
    html = get(client, toggle["href"])
    page = Page(html)
    assert page.find("a", id="toggle-style")[0]["aria-checked"] == "true"
    assert "style-note" in page.ids
    styled = client.get("/api/v1/leaderboard/?style_control=true").json()
    shown = re.findall(r'<span class="coef">([a-z ]+) <b>([-+.0-9]+)</b></span>', html)
    assert shown == [(views.STYLE_LABELS[k], f"{styled['style_coefficients'][k]:+.3f}") for k in views.STYLE_LABELS]
    # Categories without a style-controlled view are shown, but not as links.
    disabled = {s["data-category"] for s in page.find("span", **{"class": "chip disabled"})}
    assert "coding" in disabled and "overall" not in disabled


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("?category=poetry", 404, "has no view &quot;poetry&quot;"),
        ("?category=coding&style_control=true", 404, "with style control"),
        ("?style_control=maybe", 400, "style_control must be true or false"),
        ("?include_deprecated=2", 400, "include_deprecated must be true or false"),
        ("?category=%00", 400, "category is not a category key"),
        ("?category=" + "x" * 500, 400, "category is not a category key"),
        ("?category=%3Cscript%3E", 404, "&quot;&lt;script&gt;&quot;"),
    ],
)
def test_unknown_views_and_bad_parameters_get_an_error_page(client, published, query, status, text):
    html = get(client, f"/leaderboard/{query}", status)
    assert text in html and 'id="problem"' in html
    if status == 404:
        assert 'href="/leaderboard/?category=coding"' in html  # the views that exist


def test_a_bad_parameter_is_a_400_even_before_the_first_snapshot(client, db):
    assert "must be true or false" in get(client, "/leaderboard/?style_control=perhaps", 400)
    assert client.post("/leaderboard/").status_code == 405


def test_plots_are_well_formed_svg_with_the_snapshot_numbers(client, published):
    html = get(client, "/leaderboard/")
    plots = svgs(html)
    assert set(plots) == {"plot-ratings", "plot-ratings-narrow", "plot-winrate", "plot-count"}
    for ident, root in plots.items():
        assert root.get("role") == "img"
        assert root.get("aria-labelledby") == f"{ident}-title {ident}-desc"
        assert root.find(f"{SVG}title").get("id") == f"{ident}-title" and root.find(f"{SVG}title").text

    api = client.get("/api/v1/leaderboard/").json()["models"]
    rows = plots["plot-ratings"].findall(f".//{SVG}g[@data-model]")
    assert [g.get("data-model") for g in rows] == [m["model"] for m in sorted(api, key=lambda m: -m["rating"])]
    narrow = plots["plot-ratings-narrow"].findall(f".//{SVG}g[@data-model]")
    assert [g.get("data-model") for g in narrow] == [g.get("data-model") for g in rows]
    assert float(plots["plot-ratings-narrow"].get("width")) < float(plots["plot-ratings"].get("width"))
    prelim = {g.get("data-model") for g in rows if "prelim" in g.get("class")}
    assert prelim == {RARE}

    for kind, ident in (("winrate", "plot-winrate"), ("count", "plot-count")):
        matrix = client.get(f"/api/v1/matrix/?kind={kind}").json()
        names, values = matrix["models"], matrix["matrix"]
        expected = {
            (a, b): values[i][j]
            for i, a in enumerate(names)
            for j, b in enumerate(names)
            if a != b and values[i][j] is not None
        }
        cells = {
            (g.get("data-row"), g.get("data-col")): float(g.get("data-value"))
            for g in plots[ident].findall(f".//{SVG}g[@class='cell']")
        }
        assert cells == pytest.approx(expected)


def test_ids_are_unique_on_both_pages(client, published):
    for url in ("/leaderboard/", "/leaderboard/?style_control=true", "/leaderboard/models/atlas-7b/"):
        assert Page(get(client, url)).repeated_ids == set(), url


def test_pages_read_a_fixed_number_of_queries(client, published, tmp_path, django_assert_max_num_queries):
    import_and_publish(tmp_path, 40, seed=3, rare=0, start=10_000)  # a second snapshot for the history
    # snapshot header, the registry, its view list, the chosen view with its pairs, whether any judge is registered
    with django_assert_max_num_queries(5):
        get(client, "/leaderboard/?include_deprecated=true")
    # model, snapshot, views, a page of history, the registry, ratings, opponents' view
    with django_assert_max_num_queries(7):
        get(client, "/leaderboard/models/atlas-7b/")


def test_heatmaps_show_the_top_of_the_table(client, published, monkeypatch):
    monkeypatch.setattr(views, "HEATMAP_MODELS", 2)
    html = get(client, "/leaderboard/")
    cells = svgs(html)["plot-winrate"].findall(f".//{SVG}g[@class='cell']")
    assert {g.get("data-row") for g in cells} == set(ORDER[:2])
    assert "(top 2 of 5)" in html
    assert len(svgs(html)["plot-ratings"].findall(f".//{SVG}g[@data-model]")) == 5


def test_footer_identifies_the_snapshot(client, published):
    html = get(client, "/leaderboard/?category=coding")
    view = SnapshotView.objects.get(snapshot=published, key="coding", style_control=False)
    footer = re.search(r'<footer class="audit".*?</footer>', html, re.S).group(0)
    assert f"Snapshot {published.id}" in footer and published.fingerprint in footer
    assert view.counts_fingerprint in footer
    assert f'<dd id="audit-votes">{published.vote_count}</dd>' in footer
    assert f'href="/api/v1/snapshots/{published.id}/"' in footer
    assert unescape('href="/api/v1/leaderboard/?category=coding"') in footer


def test_the_newest_snapshot_is_shown(client, published, tmp_path):
    newer = import_and_publish(tmp_path, 30, seed=5, rare=0, start=10_000)
    html = get(client, "/leaderboard/")
    assert Snapshot.objects.count() == 2
    assert f"Snapshot {newer.id}" in html and newer.fingerprint in html and published.fingerprint not in html


def test_model_names_link_to_their_page_with_the_chosen_view(client, published):
    page = Page(get(client, "/leaderboard/?category=coding"))
    links = {a["href"] for a in page.find("a") if a.get("href", "").startswith("/leaderboard/models/")}
    assert "/leaderboard/models/ember-20b/?category=coding" in links


def test_model_page_plots_the_rating_in_each_snapshot(client, published, tmp_path):
    newer = import_and_publish(tmp_path, 60, seed=7, rare=0, start=10_000)
    html = get(client, "/leaderboard/models/atlas-7b/")
    page = Page(html)
    history = page.rows("history")
    assert [int(r["Snapshot"]) for r in history] == [newer.id, published.id]
    api = client.get("/api/v1/leaderboard/history/?model=atlas-7b").json()["results"]
    assert [int(r["Votes"]) for r in history] == [p["battles"] for p in api]
    points = svgs(html)["plot-history"].findall(f".//{SVG}g[@class='point']")
    assert [int(p.get("data-snapshot")) for p in points] == [published.id, newer.id]  # oldest first
    assert svgs(html)["plot-history"].find(f".//{SVG}polygon[@class='band']") is not None

    views_shown = {r["View"] for r in page.rows("model-ratings")}
    assert {"Overall", "Coding", "Overall, style controlled"} <= views_shown
    opponents = {r["Opponent"]: r for r in page.rows("opponents")}
    assert set(opponents) == set(ORDER) - {"atlas-7b"} | {RARE}

    coding = get(client, "/leaderboard/models/atlas-7b/?category=coding")
    assert 'Rating over time <span class="subtle">· Coding</span>' in coding
    api = client.get("/api/v1/leaderboard/history/?model=atlas-7b&category=coding").json()["results"]
    assert [int(r["Votes"]) for r in Page(coding).rows("history")] == [p["battles"] for p in api]


@pytest.mark.parametrize(
    ("url", "status", "text"),
    [
        ("/leaderboard/models/nobody/", 404, "No model is called"),
        ("/leaderboard/models/%3Cb%3Ehi/", 404, "No model is called &quot;&lt;b&gt;hi&quot;"),
        ("/leaderboard/models/atlas%00x/", 404, "No model is called"),
        ("/leaderboard/models/atlas-7b/?category=poetry", 404, "has no view"),
        ("/leaderboard/models/atlas-7b/?style_control=sure", 400, "style_control must be true or false"),
    ],
)
def test_model_page_errors(client, published, url, status, text):
    assert text in get(client, url, status)


def test_model_page_before_any_snapshot(client, demo_models):
    html = get(client, "/leaderboard/models/atlas-7b/")
    assert "No votes yet" in html and "Northwind Labs" in html and "<svg" not in html


def test_a_model_without_votes_in_a_view_says_so(client, published):
    # dune-1b never played a coding battle in this data set.
    html = get(client, "/leaderboard/models/dune-1b/?category=coding")
    assert 'id="no-history"' in html and "<svg" not in html


def test_organization_text_is_escaped(client, demo_models, tmp_path):
    ArenaModel.objects.filter(name="atlas-7b").update(organization='<script>alert("x")</script>')
    import_and_publish(tmp_path, 60)
    html = get(client, "/leaderboard/")
    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
