"""The voting page."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from .models import Battle
from .rendering import render_markdown
from . import integrity
from .services import ArenaError, battle_create, voter_for_session


@ensure_csrf_cookie
def arena_page(request):
    """Resume this voter's open battle or open a new one; render both answers anonymously."""
    voter = voter_for_session(request.session)
    battle = Battle.objects.filter(voter=voter, status=Battle.Status.READY).order_by("-created_at").first()
    if battle is None:
        try:
            integrity.check_rate("battle", request, voter)
            battle = battle_create(voter=voter, client_hash=integrity.request_address_hash(request))
        except ArenaError as exc:
            response = render(
                request, "arena/empty.html", {"message": exc.message, "unavailable": exc.status == 503}, status=exc.status
            )
            for name, value in (getattr(exc, "headers", None) or {}).items():
                response[name] = value
            return response
    context = {
        "battle_id": str(battle.id),
        "prompt_html": render_markdown(battle.prompt),
        "answer_a_html": render_markdown(battle.response_a),
        "answer_b_html": render_markdown(battle.response_b),
    }
    return render(request, "arena/arena.html", context)
