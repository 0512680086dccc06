"""The leaderboard page."""

from __future__ import annotations

from django.shortcuts import render

from .selectors import latest_snapshot


def leaderboard_page(request):
    snap = latest_snapshot()
    return render(request, "ratings/leaderboard.html", {"snapshot": snap, "rows": snap.rows if snap else []})
