"""The SVG plots of ratings/plots.py: well-formed XML, accessible titles,
escaped text, and marks placed where the numbers say."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from ratings import plots

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = 'x"><script>alert(1)</script>&amp;'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    ident = root.get("id")
    assert root.get("aria-labelledby") == f"{ident}-title {ident}-desc"
    assert root.find(f"{SVG}title").get("id") == f"{ident}-title" and root.find(f"{SVG}title").text
    assert root.find(f"{SVG}desc").get("id") == f"{ident}-desc" and root.find(f"{SVG}desc").text
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    return root


def row(model, rating, half=30.0, battles=100, preliminary=False) -> dict:
    return {"model": model, "rating": rating, "lower": rating - half, "upper": rating + half, "battles": battles,
            "preliminary": preliminary}  # fmt: skip


def marks(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


# --- scales ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (912, 1188, [900, 950, 1000, 1050, 1100, 1150, 1200]),
        (1000, 1000, [999, 999.5, 1000, 1000.5, 1001]),
        (-3, 7, [-4, -2, 0, 2, 4, 6, 8]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_range(lo, hi, expected):
    assert plots.nice_ticks(lo, hi) == pytest.approx(expected)


def test_nice_ticks_refuse_an_infinite_range():
    with pytest.raises(ValueError):
        plots.nice_ticks(0, float("inf"))


@pytest.mark.parametrize(
    ("span", "fmt"),
    [(40, "%H:%M:%S"), (3600, "%H:%M"), (3 * 86400, "%m-%d %H:%M"), (400 * 86400, "%Y-%m-%d")],
)
def test_time_labels_are_no_finer_than_the_span_needs(span, fmt):
    assert plots.time_format(span) == fmt


def test_label_positions_spread_evenly_and_keep_both_ends():
    assert plots.label_positions(4) == [0, 1, 2, 3]
    assert plots.label_positions(11) == [0, 2, 4, 6, 8, 10]
    many = plots.label_positions(1000)
    assert many[0] == 0 and many[-1] == 999 and len(many) == 6


def test_colour_scales_run_from_red_through_white_to_blue():
    assert plots.winrate_color(0.5) == "#f6f6f6"
    low, high = plots.winrate_color(0.1), plots.winrate_color(0.9)
    assert int(low[1:3], 16) > int(low[5:7], 16)  # more red than blue
    assert int(high[5:7], 16) > int(high[1:3], 16)  # more blue than red
    assert plots.count_color(0, 10) == "#ecf1fc" and plots.count_color(10, 10) == "#17378c"


# --- ratings with intervals ---------------------------------------------------


def test_rating_plot_has_one_row_per_model_best_first():
    rows = [row("mid", 1000), row("top", 1100, half=10), row("low", 900, half=60, preliminary=True)]
    root = parse(plots.rating_intervals(rows))
    drawn = marks(root, "row")
    assert [g.get("data-model") for g in drawn] == ["top", "mid", "low"]
    assert [g.get("class") for g in drawn] == ["row", "row", "row prelim"]
    # x grows with rating, and each bar runs from the lower to the upper bound around the dot.
    xs = []
    for g in drawn:
        interval = next(line for line in g.iter(f"{SVG}line") if line.get("class") == "interval")
        dot = g.find(f"{SVG}circle")
        lx, ux, cx = float(interval.get("x1")), float(interval.get("x2")), float(dot.get("cx"))
        assert lx < cx < ux
        xs.append((lx, cx, ux))
    assert xs[0][1] > xs[1][1] > xs[2][1]
    # widths are proportional: 2 × 10, 2 × 30, 2 × 60 points
    widths = [ux - lx for lx, _, ux in xs]
    assert widths[1] / widths[0] == pytest.approx(3, rel=0.02) and widths[2] / widths[0] == pytest.approx(6, rel=0.02)
    assert "top: 1100 (95% interval 1090 to 1110), 100 votes" == drawn[0].find(f"{SVG}title").text
    assert drawn[2].find(f"{SVG}title").text.endswith(", preliminary")


def test_rating_plot_escapes_names_and_links_them():
    root = parse(plots.rating_intervals([row(HOSTILE, 1000)], href=lambda n: f"/m/{n}/?a=1&b=2"))
    g = marks(root, "row")[0]
    assert g.get("data-model") == HOSTILE
    link = g.find(f"{SVG}a")
    assert link.get("href") == f"/m/{HOSTILE}/?a=1&b=2"
    assert link.find(f"{SVG}text").text == plots._short(HOSTILE)
    assert root.find(f".//{SVG}script") is None


def test_rating_plot_cuts_long_names_but_keeps_them_in_the_tooltip():
    name = "a-very-long-model-name-" * 4
    g = marks(parse(plots.rating_intervals([row(name, 1000)])), "row")[0]
    assert [t.text for t in g.iter(f"{SVG}text")][0] == name[: plots.LABEL_CHARS - 1] + "…"
    assert g.find(f"{SVG}title").text.startswith(name + ":")


def test_rating_plot_skips_non_finite_rows_and_says_when_nothing_is_left():
    root = parse(plots.rating_intervals([row("ok", 1000), {**row("bad", 1000), "lower": float("nan")}]))
    assert [g.get("data-model") for g in marks(root, "row")] == ["ok"]
    empty = parse(plots.rating_intervals([]))
    assert "No ratings" in "".join(empty.itertext())


# --- heatmaps -----------------------------------------------------------------


def test_winrate_heatmap_cells_carry_value_colour_and_battles():
    names = ["a", "b", "c"]
    winrate = [[None, 0.75, 0.5], [0.25, None, None], [0.5, None, None]]
    counts = [[0, 8, 2], [8, 0, None], [2, None, 0]]
    root = parse(plots.heatmap(names, winrate, kind="winrate", counts=counts))
    cells = {(g.get("data-row"), g.get("data-col")): g for g in marks(root, "cell")}
    assert set(cells) == {("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")}
    assert cells[("a", "b")].find(f"{SVG}title").text == "a against b: 75% of the points in 8 battles"
    assert cells[("a", "c")].find(f"{SVG}rect").get("fill") == plots.winrate_color(0.5)
    assert cells[("a", "b")].find(f"{SVG}rect").get("fill") == plots.winrate_color(0.75)
    assert cells[("a", "b")].find(f"{SVG}text").text == "0.75"
    never = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "none"]
    assert len(never) == 2 and never[0].find(f"{SVG}title").text.endswith("have not met")
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("class") == "self"]) == 3


def test_count_heatmap_darkest_where_most_battles():
    names = ["a", "b", "c"]
    counts = [[0, 1200, 3], [1200, 0, 0], [3, 0, 0]]
    root = parse(plots.heatmap(names, counts, kind="count"))
    cells = {(g.get("data-row"), g.get("data-col")): g for g in marks(root, "cell")}
    assert set(cells) == {("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")}  # 0 battles: never met
    assert cells[("a", "b")].find(f"{SVG}rect").get("fill") == plots.count_color(1, 1)
    assert cells[("a", "b")].find(f"{SVG}text").text == "1.2k"
    assert cells[("c", "a")].find(f"{SVG}title").text == "c against a: 3 battles"


def test_heatmap_is_square_and_checks_its_input():
    with pytest.raises(ValueError):
        plots.heatmap(["a", "b"], [[None, 1.0]], kind="winrate")
    with pytest.raises(ValueError):
        plots.heatmap(["a"], [[None]], kind="heat")
    assert "No models" in "".join(parse(plots.heatmap([], [], kind="count")).itertext())


def test_heatmap_escapes_names_and_keeps_ids_apart():
    root = parse(plots.heatmap([HOSTILE, "b"], [[None, 1.0], [0.0, None]], kind="winrate", ident="hm-1"))
    assert root.get("id") == "hm-1"
    assert {g.get("data-row") for g in marks(root, "cell")} == {HOSTILE, "b"}
    gradient = root.find(f".//{SVG}linearGradient")
    assert gradient.get("id") == "hm-1-scale"
    assert any(r.get("fill") == "url(#hm-1-scale)" for r in root.iter(f"{SVG}rect"))


def test_heatmap_of_many_models_leaves_the_numbers_out_of_small_cells():
    names = [f"m{k}" for k in range(25)]
    m = [[None if i == j else 0.5 for j in range(25)] for i in range(25)]
    root = parse(plots.heatmap(names, m, kind="winrate"))
    assert len(marks(root, "cell")) == 25 * 24
    assert all(g.find(f"{SVG}text") is None for g in marks(root, "cell"))


# --- history ------------------------------------------------------------------


def point(snapshot, when, rating, half=20.0, battles=50):
    return {"snapshot": snapshot, "created_at": when, "rating": rating, "lower": rating - half,
            "upper": rating + half, "battles": battles}  # fmt: skip


def test_history_runs_oldest_to_newest_with_a_band():
    t = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    pts = [point(3, t + timedelta(days=9), 1050), point(1, t, 1000, half=60), point(2, t + timedelta(seconds=5), 1020)]
    root = parse(plots.rating_history(pts))
    drawn = marks(root, "point")
    assert [g.get("data-snapshot") for g in drawn] == ["1", "2", "3"]
    cx = [float(g.find(f"{SVG}circle").get("cx")) for g in drawn]
    cy = [float(g.find(f"{SVG}circle").get("cy")) for g in drawn]
    # evenly spaced in publication order, whatever the time between snapshots
    assert cx[0] < cx[1] < cx[2] and cx[1] - cx[0] == pytest.approx(cx[2] - cx[1])
    assert cy[0] > cy[1] > cy[2]  # higher rating, higher on the page
    band = root.find(f".//{SVG}polygon")
    assert len(band.get("points").split()) == 6
    line = root.find(f".//{SVG}polyline")
    assert len(line.get("points").split()) == 3
    assert drawn[0].find(f"{SVG}title").text == (
        "snapshot 1, 2025-05-01 09:30:00 UTC: 1000 (95% interval 940 to 1060), 50 votes"
    )
    labels = [t.text for t in root.find(f"{SVG}g[@class='axis']").iter(f"{SVG}text")]
    assert labels.count("05-01 09:30") == 2 and "05-10 09:30" in labels


def test_history_of_one_snapshot_is_a_dot_with_an_error_bar():
    root = parse(plots.rating_history([point(7, datetime(2025, 1, 1, tzinfo=UTC), 990)]))
    assert root.find(f".//{SVG}polygon") is None and root.find(f".//{SVG}polyline") is None
    g = marks(root, "point")[0]
    bar = g.find(f"{SVG}line")
    assert float(bar.get("y1")) > float(g.find(f"{SVG}circle").get("cy")) > float(bar.get("y2"))


def test_history_without_points_says_so():
    assert "No ratings yet" in "".join(parse(plots.rating_history([])).itertext())
