"""The judges on the leaderboard page: the source selector (people, or one
judge's own board), the agreement panel, and the judge-rated preliminary
rows of models people have not voted on enough (cold start).
ratings/views.py calls in here; no JavaScript, plain links."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from arena.models import Judge

from . import judge_api, judges, selectors


def _source_links(current: str) -> list[dict]:
    base = reverse("leaderboard")
    links = [{"key": judges.SOURCE_HUMAN, "label": "People", "href": base, "current": current == judges.SOURCE_HUMAN}]
    for name in Judge.objects.order_by("name").values_list("name", flat=True):
        key = judges.SOURCE_PREFIX + name
        links.append({"key": key, "label": f"Judge {name}", "href": base + "?" + urlencode({"source": key}),
                      "current": current == key})  # fmt: skip
    return links


def _model_href(name: str) -> str:
    return reverse("leaderboard-model", args=[name])


def human_context(view, reg) -> dict:
    """Extra context of the people's board (``view`` None: nobody has voted
    yet): empty when no judge is registered."""
    if not Judge.objects.exists():
        return {}
    if view is None:
        cold = judges.cold_start_rows([], reg or selectors.registry())
    elif view.key == "overall" and not view.style_control:
        cold = judges.cold_start_rows(view.rows, reg)
    else:
        cold = []
    for r in cold:
        r["href"] = _model_href(r["model"])
    return {
        "sources": _source_links(judges.SOURCE_HUMAN),
        "judge_panel": judge_api.judges_data(),
        "judge_preliminary": cold,
    }


def judge_board_page(request: HttpRequest, source: str, problem) -> HttpResponse:
    """A judge's own leaderboard: its verdicts alone, never people's."""
    back = [("The leaderboard", reverse("leaderboard"))]
    try:
        name = judges.parse_source(source)
    except ValueError as exc:
        return problem(request, 400, "Bad request", str(exc), back)
    judge = Judge.objects.filter(name=name).first() if name else None
    if judge is None:
        return problem(request, 404, "No such judge", f'No judge is called "{(name or "")[:120]}".', back)
    board = judges.newest_board(judge.id)
    rows = []
    if board is not None:
        reg = selectors.registry()
        rows = selectors.rank_rows([r for r in selectors.joined(board.rows, reg) if r["status"] != "deprecated"])
        for r in rows:
            r["href"] = _model_href(r["model"])
    panel = [j for j in judge_api.judges_data() if j["name"] == judge.name]
    return render(request, "ratings/judge_board.html", {
        "judge": judge, "board": board, "sources": _source_links(judges.SOURCE_PREFIX + judge.name),
        "ranked": [r for r in rows if not r["preliminary"]], "preliminary": [r for r in rows if r["preliminary"]],
        "judge_panel": panel, "min_votes": selectors.min_votes(),
    })  # fmt: skip
