"""The voting page."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from .models import Battle
from .rendering import render_markdown
from .services import NoBattleAvailable, battle_create, voter_for_session


@ensure_csrf_cookie
def arena_page(request):
    """Resume this voter's open battle or open a new one; render both answers anonymously."""
    voter = voter_for_session(request.session)
    battle = Battle.objects.filter(voter=voter, status=Battle.Status.READY).order_by("-created_at").first()
    if battle is None:
        try:
            battle = battle_create(voter=voter)
        except NoBattleAvailable as exc:
            return render(request, "arena/empty.html", {"message": exc.message}, status=503)
    context = {
        "battle_id": str(battle.id),
        "prompt_html": render_markdown(battle.prompt),
        "answer_a_html": render_markdown(battle.response_a),
        "answer_b_html": render_markdown(battle.response_b),
    }
    return render(request, "arena/arena.html", context)
