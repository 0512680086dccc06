"""Leaderboard plots as server-side SVG.

The pages work without a JavaScript build step, so the charts are built here
as SVG strings: no plotting library, nothing to download, the same markup in
every browser and in a screenshot. All text goes through ``_esc``; every chart
has a <title> and <desc> named by ``aria-labelledby``, and every mark its own
<title>, which browsers show on hover and screen readers read.

Inputs are plain numbers in rating points (never theta), taken by
ratings/views.py from the published snapshot through ratings/selectors.py, so
a plot shows exactly what the table and the API show. ``ident`` prefixes the
ids inside a chart: several charts share one HTML page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC
from html import escape

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
CHAR_WIDTH = 0.6  # average glyph width per unit of font size: room for a label
MIN_SCALE = 0.7  # smallest scale a page should shrink a chart to (12 px text becomes 8.4 px)
LABEL_CHARS = 32  # longer model names are cut (with …) in the plots; titles keep them whole
INK, MUTED, GRID, ACCENT = "#1d1f23", "#5d6470", "#e3e6eb", "#3056d3"
ACCENT_SOFT = "#c9d5f6"
# Win-rate scale: red below a half, near-white at a half, blue above.
LOSE_RGB, EVEN_RGB, WIN_RGB = (196, 69, 54), (246, 246, 246), (41, 98, 214)
# Battle counts: pale to dark blue.
FEW_RGB, MANY_RGB = (236, 241, 252), (23, 55, 140)
EMPTY_FILL, SELF_FILL = "#ffffff", "#eceef1"
HEATMAP_TITLE = {
    "winrate": "Win rate of the row model against the column model",
    "count": "Battles between each pair of models",
}
LEGEND_CAPTION = {"winrate": "share of the points won by the row model", "count": "battles"}
LEGEND_WIDTH = 180 + 16 + 80  # colour bar, gap, "never met" swatch

Href = Callable[[str], str] | None


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


def _num(x: float) -> str:
    """A coordinate: one decimal is finer than a pixel."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def _text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


def _svg(ident: str, width: float, height: float, title: str, desc: str, body: list[str]) -> str:
    """The chart at its natural size; a page may scale it down, to MIN_SCALE
    at most (then its box scrolls), so the text stays readable."""
    w, h = _num(width), _num(height)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot-svg" id="{_esc(ident)}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" style="min-width: {round(width * MIN_SCALE)}px" role="img" '
        f'aria-labelledby="{_esc(ident)}-title {_esc(ident)}-desc" font-family="{FONT}" font-size="12" fill="{INK}">'
        f'<title id="{_esc(ident)}-title">{_esc(title)}</title><desc id="{_esc(ident)}-desc">{_esc(desc)}</desc>'
    )
    return head + "".join(body) + "</svg>"


def _empty(ident: str, title: str, message: str) -> str:
    body = [f'<text x="12" y="26" fill="{MUTED}">{_esc(message)}</text>']
    return _svg(ident, 360, 44, title, message, body)


def _link(href: Href, name: str, inner: str) -> str:
    return f'<a href="{_esc(href(name))}">{inner}</a>' if href else inner


def _fmt_points(x: float) -> str:
    return f"{x:.0f}"


# --------------------------------------------------------------------------
# scales


def _nice(step: float) -> float:
    """The 1-2-5 number closest to ``step`` (Heckbert's "nice numbers")."""
    exp = math.floor(math.log10(step))
    frac = step / 10**exp
    nice = 1 if frac < 1.5 else 2 if frac < 3 else 5 if frac < 7 else 10
    return nice * 10**exp


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round values covering [lo, hi], about ``count`` of them; the first and
    last enclose the range, so they can serve as the axis ends."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("tick range must be finite")
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    step = _nice((hi - lo) / max(count - 1, 1))
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    return [round(first + k * step, 9) for k in range(round((last - first) / step) + 1)]


def _linear(d0: float, d1: float, r0: float, r1: float) -> Callable[[float], float]:
    span = (d1 - d0) or 1.0
    return lambda v: r0 + (v - d0) / span * (r1 - r0)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0)
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _text_on(rgb: tuple[int, int, int]) -> str:
    """Dark text on light cells, white on dark ones (relative luminance)."""
    lum = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255
    return INK if lum > 0.55 else "#ffffff"


def _winrate_rgb(share: float) -> tuple[int, int, int]:
    if share < 0.5:
        return _mix(LOSE_RGB, EVEN_RGB, share / 0.5)
    return _mix(EVEN_RGB, WIN_RGB, (share - 0.5) / 0.5)


def _count_rgb(count: float, most: float) -> tuple[int, int, int]:
    return _mix(FEW_RGB, MANY_RGB, count / most if most > 0 else 0.0)


def winrate_color(share: float) -> str:
    """Red for 0, near-white for 0.5, blue for 1."""
    return _hex(_winrate_rgb(share))


def count_color(count: float, most: float) -> str:
    """Pale for none, dark blue for ``most``."""
    return _hex(_count_rgb(count, most))


def _finite(*values) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


# --------------------------------------------------------------------------
# 1. ratings with 95% intervals


def _interval_legend(start: float, width: float, preliminary: bool) -> str:
    """Symbols and words in one line, aligned with the plot when they fit there."""
    items = [("dot", "rating"), ("bar", "95% interval")]
    if preliminary:
        items.append(("hollow", "preliminary (few votes)"))
    need = sum((30 if kind == "bar" else 10) + 6 + _text_width(text, 12) + 16 for kind, text in items)
    x = start if start + need <= width else 8.0
    parts = []
    for kind, text in items:
        if kind == "dot":
            parts.append(f'<circle cx="{_num(x + 5)}" cy="13" r="4.5" fill="{ACCENT}"/>')
        elif kind == "hollow":
            parts.append(f'<circle cx="{_num(x + 5)}" cy="13" r="4" fill="#fff" stroke="{MUTED}" stroke-width="1.5"/>')
        else:
            parts.append(
                f'<line x1="{_num(x)}" y1="13" x2="{_num(x + 30)}" y2="13" stroke="{ACCENT}" stroke-width="2"/>'
            )
        x += (30 if kind == "bar" else 10) + 6
        parts.append(f'<text x="{_num(x)}" y="17" fill="{MUTED}">{_esc(text)}</text>')
        x += _text_width(text, 12) + 16
    return '<g class="legend">' + "".join(parts) + "</g>"


def rating_intervals(
    rows: Sequence[dict],
    *,
    ident: str = "plot-ratings",
    title: str = "Ratings with 95% intervals",
    href: Href = None,
    width: float = 900.0,
) -> str:
    """One line per model, best first: a dot at the rating, a bar from the
    lower to the upper bound (rating points). Rows: ``model``, ``rating``,
    ``lower``, ``upper``, ``battles``, optional ``preliminary`` (drawn hollow
    and dashed). ``width``: natural width in px (a phone wants about 400)."""
    rows = sorted(
        (r for r in rows if _finite(r["rating"], r["lower"], r["upper"])),
        key=lambda r: (-r["rating"], r["model"]),
    )
    if not rows:
        return _empty(ident, title, "No ratings to plot.")
    row_h, legend_h, axis_h = 22.0, 26.0, 44.0
    label_w = min(max(_text_width(_short(r["model"]), 12) for r in rows), 240, width * 0.3) + 14
    value_w = 44.0
    x0, x1 = label_w, width - value_w - 10
    ticks = nice_ticks(min(r["lower"] for r in rows), max(r["upper"] for r in rows), max(3, int((x1 - x0) / 80)))
    x = _linear(ticks[0], ticks[-1], x0, x1)
    top = legend_h
    bottom = top + len(rows) * row_h
    height = bottom + axis_h
    body: list[str] = []
    body.append(_interval_legend(x0, width, any(r.get("preliminary") for r in rows)))
    grid = []
    for t in ticks:
        gx = _num(x(t))
        grid.append(f'<line x1="{gx}" y1="{_num(top)}" x2="{gx}" y2="{_num(bottom)}" stroke="{GRID}"/>')
        grid.append(f'<text x="{gx}" y="{_num(bottom + 16)}" text-anchor="middle" fill="{MUTED}">{t:g}</text>')
    body.append('<g class="axis">' + "".join(grid) + "</g>")
    body.append(
        f'<text x="{_num((x0 + x1) / 2)}" y="{_num(bottom + 36)}" text-anchor="middle" fill="{MUTED}">'
        "rating (points); bar: 95% interval</text>"
    )
    for k, r in enumerate(rows):
        cy = top + (k + 0.5) * row_h
        is_prelim = bool(r.get("preliminary"))
        colour = MUTED if is_prelim else ACCENT
        tip = (
            f"{r['model']}: {_fmt_points(r['rating'])} (95% interval {_fmt_points(r['lower'])} to "
            f"{_fmt_points(r['upper'])}), {r['battles']} vote{'s' if r['battles'] != 1 else ''}"
            + (", preliminary" if is_prelim else "")
        )
        lx, ux, rx = x(r["lower"]), x(r["upper"]), x(r["rating"])
        dash = ' stroke-dasharray="4 3"' if is_prelim else ""
        dot = (
            f'<circle cx="{_num(rx)}" cy="{_num(cy)}" r="4" fill="#fff" stroke="{colour}" stroke-width="1.8"/>'
            if is_prelim
            else f'<circle cx="{_num(rx)}" cy="{_num(cy)}" r="4.5" fill="{colour}"/>'
        )
        stripe = (
            f'<rect x="0" y="{_num(cy - row_h / 2)}" width="{_num(width)}" height="{_num(row_h)}" fill="#f6f7f9"/>'
            if k % 2
            else ""
        )
        label = f'<text x="{_num(label_w - 10)}" y="{_num(cy + 4)}" text-anchor="end">{_esc(_short(r["model"]))}</text>'
        body.append(
            f'<g class="row{" prelim" if is_prelim else ""}" data-model="{_esc(r["model"])}" '
            f'data-rating="{r["rating"]:.4f}"><title>{_esc(tip)}</title>{stripe}'
            + _link(href, r["model"], label)
            + f'<line class="interval" x1="{_num(lx)}" y1="{_num(cy)}" x2="{_num(ux)}" y2="{_num(cy)}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
            f'<line x1="{_num(lx)}" y1="{_num(cy - 4)}" x2="{_num(lx)}" y2="{_num(cy + 4)}" stroke="{colour}"/>'
            f'<line x1="{_num(ux)}" y1="{_num(cy - 4)}" x2="{_num(ux)}" y2="{_num(cy + 4)}" stroke="{colour}"/>'
            + dot
            + f'<text x="{_num(width - 6)}" y="{_num(cy + 4)}" text-anchor="end" font-variant-numeric="tabular-nums">'
            f"{_fmt_points(r['rating'])}</text></g>"
        )
    desc = (
        f"{len(rows)} models from {rows[0]['model']} ({_fmt_points(rows[0]['rating'])}) "
        f"to {rows[-1]['model']} ({_fmt_points(rows[-1]['rating'])}); each bar is the 95% interval."
    )
    return _svg(ident, width, height, title, desc, body)


# --------------------------------------------------------------------------
# 2, 3. pairwise heatmaps


def _compact(n: float) -> str:
    n = int(n)
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def heatmap(
    names: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    kind: str,
    counts: Sequence[Sequence[float | None]] | None = None,
    ident: str | None = None,
    title: str | None = None,
    href: Href = None,
) -> str:
    """A square matrix, rows and columns in ``names`` order.

    ``kind="winrate"``: cell (i, j) is the share of points model i scored
    against model j (a tie is half), ``None`` where they never met; ``counts``
    (battles per pair) goes into the cell titles. ``kind="count"``: battles
    between i and j. The diagonal is left blank.
    """
    if kind not in ("winrate", "count"):
        raise ValueError("kind must be winrate or count")
    ident = ident or f"plot-{kind}"
    title = title or HEATMAP_TITLE[kind]
    n = len(names)
    if n == 0:
        return _empty(ident, title, "No models to compare.")
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise ValueError(f"matrix must be {n}×{n}")
    cell = float(max(24, min(46, 560 // n)))
    label_w = min(max(_text_width(_short(m), 11) for m in names), 210) + 10
    top_h = label_w * 0.72 + 14
    grid_w = n * cell
    caption_w = _text_width(LEGEND_CAPTION[kind], 11)
    width = label_w + max(grid_w + label_w * 0.72, LEGEND_WIDTH, caption_w) + 8
    legend_y = top_h + grid_w + 24
    height = legend_y + 40
    most = max((v for row in matrix for v in row if _finite(v)), default=0) if kind == "count" else 1.0
    show_values = cell >= 30
    body: list[str] = []
    labels = []
    for k, name in enumerate(names):
        cy = top_h + (k + 0.5) * cell
        row_label = (
            f'<text x="{_num(label_w - 8)}" y="{_num(cy + 4)}" text-anchor="end" font-size="11">'
            f"{_esc(_short(name))}</text>"
        )
        labels.append(_link(href, name, row_label))
        cx = label_w + (k + 0.5) * cell
        col_label = (
            f'<text transform="translate({_num(cx + 3)} {_num(top_h - 6)}) rotate(-45)" font-size="11">'
            f"{_esc(_short(name))}</text>"
        )
        labels.append(_link(href, name, col_label))
    body.append('<g class="labels">' + "".join(labels) + "</g>")
    cells = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            value = matrix[i][j]
            x, y = label_w + j * cell, top_h + i * cell
            rect = f'x="{_num(x)}" y="{_num(y)}" width="{_num(cell)}" height="{_num(cell)}"'
            if i == j:
                cells.append(f'<rect class="self" {rect} fill="{SELF_FILL}"><title>{_esc(a)}</title></rect>')
                continue
            if not _finite(value) or (kind == "count" and value == 0):
                tip = f"{a} and {b} have not met"
                cells.append(
                    f'<rect class="none" {rect} fill="{EMPTY_FILL}" stroke="{GRID}"><title>{_esc(tip)}</title></rect>'
                )
                continue
            if kind == "winrate":
                rgb = _winrate_rgb(value)
                tip = f"{a} against {b}: {value:.0%} of the points"
                battles = counts[i][j] if counts is not None else None
                if _finite(battles):
                    tip += f" in {int(battles)} battle{'s' if battles != 1 else ''}"
                text = f"{value:.2f}"
            else:
                rgb = _count_rgb(value, most)
                tip = f"{a} against {b}: {int(value)} battle{'s' if value != 1 else ''}"
                text = _compact(value)
            label = (
                f'<text x="{_num(x + cell / 2)}" y="{_num(y + cell / 2 + 4)}" text-anchor="middle" font-size="10.5" '
                f'fill="{_text_on(rgb)}">{_esc(text)}</text>'
                if show_values
                else ""
            )
            cells.append(
                f'<g class="cell" data-row="{_esc(a)}" data-col="{_esc(b)}" data-value="{value}">'
                f'<title>{_esc(tip)}</title><rect {rect} fill="{_hex(rgb)}" stroke="#ffffff"/>{label}</g>'
            )
    body.append('<g class="cells">' + "".join(cells) + "</g>")
    body.append(_heat_legend(ident, kind, most, label_w, legend_y))
    if kind == "winrate":
        desc = (
            f"{n} models. Each cell: the share of points the row model scored against the column model "
            "(a tie counts half); blank where they never met."
        )
    else:
        desc = f"{n} models. Each cell: battles between the row model and the column model; at most {int(most)}."
    return _svg(ident, width, height, title, desc, body)


def _heat_legend(ident: str, kind: str, most: float, x0: float, y0: float) -> str:
    """Caption, colour bar with its ends (and middle) marked, and the "never met" swatch."""
    bar_w, bar_h = 180.0, 10.0
    grad = f"{ident}-scale"
    if kind == "winrate":
        stops = [(0, winrate_color(0)), (50, winrate_color(0.5)), (100, winrate_color(1))]
        marks = [(0.0, "0"), (0.5, "0.5"), (1.0, "1")]
    else:
        stops = [(0, count_color(0, 1)), (100, count_color(1, 1))]
        marks = [(0.0, "0"), (1.0, _compact(most))]
    bar_y = y0 + 8
    parts = [
        f'<text x="{_num(x0)}" y="{_num(y0)}" font-size="11" fill="{MUTED}">{_esc(LEGEND_CAPTION[kind])}</text>',
        f'<defs><linearGradient id="{_esc(grad)}">'
        + "".join(f'<stop offset="{o}%" stop-color="{c}"/>' for o, c in stops)
        + "</linearGradient></defs>",
        f'<rect x="{_num(x0)}" y="{_num(bar_y)}" width="{_num(bar_w)}" height="{_num(bar_h)}" '
        f'fill="url(#{_esc(grad)})" stroke="{GRID}"/>',
    ]
    for t, text in marks:
        parts.append(
            f'<text x="{_num(x0 + t * bar_w)}" y="{_num(bar_y + bar_h + 13)}" text-anchor="middle" font-size="11" '
            f'fill="{MUTED}">{_esc(text)}</text>'
        )
    sx = x0 + bar_w + 16
    parts.append(
        f'<rect x="{_num(sx)}" y="{_num(bar_y)}" width="10" height="10" fill="{EMPTY_FILL}" stroke="#b9bec7"/>'
        f'<text x="{_num(sx + 15)}" y="{_num(bar_y + 9)}" font-size="11" fill="{MUTED}">never met</text>'
    )
    return '<g class="legend">' + "".join(parts) + "</g>"


# --------------------------------------------------------------------------
# 4. a model's rating over the snapshots


def time_format(span_seconds: float) -> str:
    """strftime format for instants spread over ``span_seconds``: no finer than needed."""
    if span_seconds < 600:
        return "%H:%M:%S"
    if span_seconds < 86400:
        return "%H:%M"
    if span_seconds < 60 * 86400:
        return "%m-%d %H:%M"
    return "%Y-%m-%d"


def label_positions(n: int, most: int = 6) -> list[int]:
    """Up to ``most`` evenly spread indices of ``n`` points, the first and the last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(k * (n - 1) / (most - 1)) for k in range(most)})


def rating_history(
    points: Sequence[dict], *, ident: str = "plot-history", title: str = "Rating over time", width: float = 900.0
) -> str:
    """Rating (line) and 95% interval (band) in each snapshot, oldest left.

    Snapshots are spaced evenly in publication order, not by time: a new one
    appears whenever the counted votes change, seconds or weeks apart, and
    even spacing keeps each one visible. The axis labels and every point's
    title give the time. Points: ``created_at`` (aware datetime), ``rating``,
    ``lower``, ``upper``, ``battles``, ``snapshot`` (id), in any order.
    ``width``: natural width in px (a phone wants about 400)."""
    pts = sorted(
        (p for p in points if _finite(p["rating"], p["lower"], p["upper"])),
        key=lambda p: (p["created_at"], p["snapshot"]),
    )
    if not pts:
        return _empty(ident, title, "No ratings yet.")
    height = 300.0
    left, right, top, bottom = 52.0, 24.0, 14.0, 46.0
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    n = len(pts)
    pad = 24.0
    xs = [(x0 + x1) / 2] if n == 1 else [x0 + pad + k * (x1 - x0 - 2 * pad) / (n - 1) for k in range(n)]
    yt = nice_ticks(min(p["lower"] for p in pts), max(p["upper"] for p in pts), 5)
    y = _linear(yt[0], yt[-1], y1, y0)
    body = []
    axis = []
    for v in yt:
        gy = _num(y(v))
        axis.append(f'<line x1="{_num(x0)}" y1="{gy}" x2="{_num(x1)}" y2="{gy}" stroke="{GRID}"/>')
        axis.append(f'<text x="{_num(x0 - 8)}" y="{_num(y(v) + 4)}" text-anchor="end" fill="{MUTED}">{v:g}</text>')
    fmt = time_format((pts[-1]["created_at"] - pts[0]["created_at"]).total_seconds())
    for k in label_positions(n, max(2, int((x1 - x0) / 120))):
        gx = _num(xs[k])
        label = pts[k]["created_at"].astimezone(UTC).strftime(fmt)
        axis.append(f'<line x1="{gx}" y1="{_num(y1)}" x2="{gx}" y2="{_num(y1 + 5)}" stroke="{MUTED}"/>')
        axis.append(f'<text x="{gx}" y="{_num(y1 + 19)}" text-anchor="middle" fill="{MUTED}">{_esc(label)}</text>')
    axis.append(f'<line x1="{_num(x0)}" y1="{_num(y1)}" x2="{_num(x1)}" y2="{_num(y1)}" stroke="{MUTED}"/>')
    axis.append(
        f'<text x="{_num((x0 + x1) / 2)}" y="{_num(height - 6)}" text-anchor="middle" fill="{MUTED}">'
        "snapshots in order of publication (UTC); band: 95% interval</text>"
    )
    body.append('<g class="axis">' + "".join(axis) + "</g>")
    if n > 1:
        band = [f"{_num(px)},{_num(y(p['upper']))}" for px, p in zip(xs, pts, strict=True)]
        band += [f"{_num(px)},{_num(y(p['lower']))}" for px, p in reversed(list(zip(xs, pts, strict=True)))]
        body.append(f'<polygon class="band" points="{" ".join(band)}" fill="{ACCENT_SOFT}" fill-opacity="0.7"/>')
        line = " ".join(f"{_num(px)},{_num(y(p['rating']))}" for px, p in zip(xs, pts, strict=True))
        body.append(f'<polyline class="line" points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
    marks = []
    for px, p in zip(xs, pts, strict=True):
        when = p["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        tip = (
            f"snapshot {p['snapshot']}, {when}: {_fmt_points(p['rating'])} (95% interval "
            f"{_fmt_points(p['lower'])} to {_fmt_points(p['upper'])}), {p['battles']} votes"
        )
        whisker = (
            f'<line x1="{_num(px)}" y1="{_num(y(p["lower"]))}" x2="{_num(px)}" y2="{_num(y(p["upper"]))}" '
            f'stroke="{ACCENT}" stroke-width="2"/>'
            if n == 1
            else ""
        )
        marks.append(
            f'<g class="point" data-snapshot="{_esc(p["snapshot"])}"><title>{_esc(tip)}</title>{whisker}'
            f'<circle cx="{_num(px)}" cy="{_num(y(p["rating"]))}" r="4" fill="{ACCENT}" stroke="#fff"/></g>'
        )
    body.append('<g class="points">' + "".join(marks) + "</g>")
    first, last = pts[0], pts[-1]
    desc = (
        f"{n} snapshot{'s' if n != 1 else ''}: from {_fmt_points(first['rating'])} "
        f"to {_fmt_points(last['rating'])} rating points."
    )
    return _svg(ident, width, height, title, desc, body)
