"""The leaderboard pages: server-rendered HTML with SVG plots, no JavaScript.

Every number comes from the newest published snapshot through
ratings/selectors.py, the functions the JSON API calls, so the page and
/api/v1/leaderboard/ never disagree. Parameters travel in plain links, so the
pages work without scripts; an unknown category or model is a 404 page and a
malformed parameter a 400 page, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from arena.models import ArenaModel
from arena.names import is_valid_model_name

from . import intervals, judge_views, plots, selectors
from .models import Snapshot, SnapshotView

HEATMAP_MODELS = 20  # the heatmaps show the top of the table; /api/v1/matrix/ has every pair
HISTORY_ROWS = 50  # newest snapshots listed under the history plot
HISTORY_PLOT_POINTS = 2000  # newest points drawn (retention keeps one a day after RATINGS_KEEP_ALL_DAYS)
# The wide plots are drawn twice: at their natural width and at this one for
# phones; the stylesheet shows one of them (SVG text does not reflow).
NARROW = 400.0
CATEGORY_ORDER = ("overall", "coding", "long_prompt", "multi_turn", "no_ties")
STYLE_LABELS = {"tokens": "length", "headers": "headers", "list_items": "list items", "bold": "bold"}


class BadParameter(ValueError):
    """A query parameter that cannot be read; the page answers 400."""


@dataclass(frozen=True)
class ViewChoice:
    category: str
    style_control: bool


def _flag(request: HttpRequest, name: str) -> bool:
    raw = request.GET.get(name, "")
    if raw == "":
        return False
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise BadParameter(f'{name} must be true or false, not "{raw[:40]}"')


def _choice(request: HttpRequest) -> ViewChoice:
    category = request.GET.get("category") or "overall"
    if "\x00" in category or len(category) > 80:
        raise BadParameter("category is not a category key, see /api/v1/categories/")
    return ViewChoice(category, _flag(request, "style_control"))


def _kept(**params) -> dict:
    """Query parameters without their defaults, so links stay short."""
    return {k: ("true" if v is True else v) for k, v in params.items() if v not in (None, False, "", "overall")}


def _query(**params) -> str:
    kept = _kept(**params)
    return "?" + urlencode(kept) if kept else ""


def _board_url(**params) -> str:
    return reverse("leaderboard") + _query(**params)


def _problem(
    request: HttpRequest, status: int, heading: str, message: str, links: Sequence[tuple[str, str]] = ()
) -> HttpResponse:
    return render(
        request,
        "ratings/problem.html",
        {"status": status, "heading": heading, "message": message, "links": links},
        status=status,
    )


def snapshot_views(snap: Snapshot) -> list[SnapshotView]:
    """The snapshot's views (headers only): overall first, the fixed
    categories next, languages last by name."""
    views = list(snap.views.only("key", "label", "style_control", "vote_count", "counts_fingerprint", "snapshot_id"))

    def order(v: SnapshotView) -> tuple:
        fixed = CATEGORY_ORDER.index(v.key) if v.key in CATEGORY_ORDER else len(CATEGORY_ORDER)
        return (fixed, v.label.lower(), v.key, v.style_control)

    return sorted(views, key=order)


def _category_links(views: list[SnapshotView], choice: ViewChoice, include_deprecated: bool) -> list[dict]:
    """One link per category; with style control on, categories without a
    style-controlled view get no link (``href`` None) instead of a 404."""
    plain = {v.key: v for v in views if not v.style_control}
    styled = {v.key: v for v in views if v.style_control}
    links = []
    for key in dict.fromkeys(v.key for v in views):
        view = plain.get(key) or styled[key]
        enabled = key in (styled if choice.style_control else plain)
        href = _board_url(category=key, style_control=choice.style_control, include_deprecated=include_deprecated)
        links.append(
            {
                "key": key,
                "label": view.label,
                "votes": view.vote_count,
                "current": key == choice.category,
                "href": href if enabled else None,
            }
        )
    return links


def _heatmap_data(view: SnapshotView, names: list[str], kind: str, reg: selectors.Registry) -> list[list]:
    """The selector's matrix cut down to ``names``, in that order."""
    all_names, full = selectors.matrix(view, kind, reg)
    index = {n: k for k, n in enumerate(all_names)}
    picked = [index[n] for n in names]
    return [[full[i][j] for j in picked] for i in picked]


def _model_href(choice: ViewChoice) -> Callable[[str], str]:
    """Model page links that keep the chosen view, so its history is the one shown."""
    suffix = _query(category=choice.category, style_control=choice.style_control)
    return lambda name: reverse("leaderboard-model", args=[name]) + suffix


def _style_coefficients(view: SnapshotView) -> list[tuple[str, float]]:
    """(label, coefficient) in a fixed order: a jsonb column does not keep the keys' order."""
    coefficients = view.style_coefficients or {}
    known = [k for k in STYLE_LABELS if k in coefficients]
    return [(STYLE_LABELS.get(k, k), coefficients[k]) for k in known + sorted(set(coefficients) - set(known))]


def _view_name(choice: ViewChoice) -> str:
    return f'"{choice.category}"' + (" with style control" if choice.style_control else "")


@require_safe
def leaderboard_page(request: HttpRequest) -> HttpResponse:
    try:
        choice = _choice(request)
        include_deprecated = _flag(request, "include_deprecated")
        shown = intervals.parse(request.GET.get("intervals"))
    except (BadParameter, ValueError) as exc:
        message = str(exc) if isinstance(exc, BadParameter) else f"intervals {exc}"
        return _problem(request, 400, "Bad request", message, [("The leaderboard", reverse("leaderboard"))])
    if (request.GET.get("source") or "human") != "human":  # a judge's own board (ratings/judge_views.py)
        return judge_views.judge_board_page(request, request.GET["source"], _problem)
    # the chosen intervals travel in every link below, unless they are the default
    keep = {"intervals": shown} if shown != intervals.default() else {}
    snap = selectors.newest_snapshot()
    if snap is None:
        context = {"snapshot": None, "min_votes": selectors.min_votes(), **judge_views.human_context(None, None)}
        return render(request, "ratings/leaderboard.html", context)
    views = snapshot_views(snap)
    view = selectors.snapshot_view(snap, choice.category, choice.style_control, with_pairs=True)
    if view is None:
        links = [(v.label, _board_url(category=v.key, style_control=v.style_control)) for v in views]
        message = f"Snapshot {snap.id} has no view {_view_name(choice)}."
        return _problem(request, 404, "No such leaderboard", message, links)
    view = intervals.view_with(view, shown)  # rank (UB) below comes from the chosen bounds
    if view is None:
        links = [("Marginal intervals", _board_url(category=choice.category, style_control=choice.style_control))]
        return _problem(request, 404, "No simultaneous intervals", intervals.missing_detail(snap.id), links)

    reg = selectors.registry()
    rows = selectors.leaderboard_rows(view, include_deprecated=include_deprecated, reg=reg)
    href = _model_href(choice)
    for r in rows:
        r["href"] = href(r["model"])
    top = [r["model"] for r in rows[:HEATMAP_MODELS]]
    counts = _heatmap_data(view, top, "count", reg)
    winrate = _heatmap_data(view, top, "winrate", reg)
    # plots.py escapes every text it draws, so its SVG goes into the page as is.
    plot_svg = {
        "ratings": mark_safe(plots.rating_intervals(rows, href=href)),  # noqa: S308
        "ratings_narrow": mark_safe(  # noqa: S308
            plots.rating_intervals(rows, href=href, width=NARROW, ident="plot-ratings-narrow")
        ),
        "winrate": mark_safe(plots.heatmap(top, winrate, kind="winrate", counts=counts, href=href)),  # noqa: S308
        "count": mark_safe(plots.heatmap(top, counts, kind="count", href=href)),  # noqa: S308
    }
    has_style = any(v.key == choice.category and v.style_control for v in views)
    same = {"category": choice.category, "style_control": choice.style_control}
    context = {
        "snapshot": snap,
        "view": view,
        "choice": choice,
        "include_deprecated": include_deprecated,
        "categories": _category_links(views, choice, include_deprecated),
        "style_href": _board_url(
            category=choice.category,
            style_control=not choice.style_control,
            include_deprecated=include_deprecated,
            **keep,
        )
        if has_style or choice.style_control
        else None,
        "deprecated_href": _board_url(**same, include_deprecated=not include_deprecated, **keep),
        "intervals": shown,
        "intervals_href": _board_url(
            **same,
            include_deprecated=include_deprecated,
            intervals="marginal" if shown == "simultaneous" else "simultaneous",
        ),
        "deprecated_count": sum(1 for r in selectors.joined(view.rows, reg) if r["status"] == "deprecated"),
        "style_coefficients": _style_coefficients(view),
        "ranked": [r for r in rows if not r["preliminary"]],
        "preliminary": [r for r in rows if r["preliminary"]],
        "min_votes": selectors.min_votes(),
        "plots": plot_svg,
        "heatmap_models": len(top),
        "listed": len(rows),
        "api_href": reverse("api-leaderboard") + _query(**same, include_deprecated=include_deprecated, **keep),
        "matrix_href": reverse("api-matrix") + "?" + urlencode({"kind": "winrate", **_kept(**same)}),
        **judge_views.human_context(view, reg),  # source selector, agreement panel, judge-rated newcomers
    }
    return render(request, "ratings/leaderboard.html", context)


@require_safe
def model_page(request: HttpRequest, name: str) -> HttpResponse:
    """One model: its rating in each view, its history in the chosen view, its opponents."""
    back = [("The leaderboard", reverse("leaderboard"))]
    model = ArenaModel.objects.filter(name=name).first() if is_valid_model_name(name) else None
    if model is None:
        return _problem(request, 404, "No such model", f'No model is called "{name[:120]}".', back)
    try:
        choice = _choice(request)
    except BadParameter as exc:
        return _problem(request, 400, "Bad request", str(exc), back)
    here = reverse("leaderboard-model", args=[model.name])
    snap = selectors.newest_snapshot()
    context: dict = {"model": model, "snapshot": snap, "choice": choice}
    if snap is None:
        return render(request, "ratings/model.html", context)
    views = {(v.key, v.style_control): v for v in snapshot_views(snap)}
    view = views.get((choice.category, choice.style_control))
    if view is None:
        message = f"Snapshot {snap.id} has no view {_view_name(choice)}."
        return _problem(request, 404, "No such leaderboard", message, [(model.name, here), *back])
    # Paginated in SQL: the newest points of the indexed RatingPoint table, and their count.
    points = selectors.model_history(model, choice.category, choice.style_control)
    history = selectors.history_points(points[:HISTORY_PLOT_POINTS])
    history_total = points.count() if len(history) == HISTORY_PLOT_POINTS else len(history)
    reg = selectors.registry()
    ratings = selectors.model_ratings(snap, model, reg)
    order = {key: k for k, key in enumerate(views)}
    ratings.sort(key=lambda r: order.get((r["category"], r["style_control"]), len(order)))
    for r in ratings:
        r["href"] = here + _query(category=r["category"], style_control=r["style_control"])
        r["current"] = (r["category"], r["style_control"]) == (choice.category, choice.style_control)
    title = f"{model.name}: rating over time, {view.label}"
    same = {"category": choice.category, "style_control": choice.style_control}
    context.update(
        {
            "view": view,
            "ratings": ratings,
            "history": history[:HISTORY_ROWS],
            "history_total": history_total,
            # plots.py escapes every text it draws, so its SVG goes into the page as is.
            "history_plot": mark_safe(plots.rating_history(history, title=title)),  # noqa: S308
            "history_plot_narrow": mark_safe(  # noqa: S308
                plots.rating_history(history, title=title, width=NARROW, ident="plot-history-narrow")
            ),
            "opponents": selectors.model_opponents(snap, model, reg),
            "board_href": _board_url(**same),
            "api_href": reverse("api-leaderboard-history") + "?" + urlencode({"model": model.name, **_kept(**same)}),
        }
    )
    return render(request, "ratings/model.html", context)
