"""The voting page."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie

from . import integrity, live
from .models import ArenaModel, Battle
from .rendering import render_markdown
from .services import ArenaError, battle_create, voter_for_session


@ensure_csrf_cookie
def arena_page(request):
    """Resume this voter's open battle or open a new one; render both answers anonymously.

    With two or more live models the page asks for the voter's own prompt
    and streams both answers (arena/live.html); otherwise it shows two
    pre-generated answers.
    """
    voter = voter_for_session(request.session)
    if live.live_enabled():
        return live_page(request, voter)
    battle = Battle.objects.filter(voter=voter, status=Battle.Status.READY).order_by("-created_at").first()
    if battle is None:
        try:
            integrity.check_rate("battle", request, voter)
            battle = battle_create(voter=voter, client_hash=integrity.request_address_hash(request))
        except ArenaError as exc:
            response = render(
                request,
                "arena/empty.html",
                {"message": exc.message, "unavailable": exc.status == 503},
                status=exc.status,
            )
            for name, value in (getattr(exc, "headers", None) or {}).items():
                response[name] = value
            return response
    context = {"battle_id": str(battle.id), "turns": rendered_turns(battle)}
    return render(request, "arena/arena.html", context)


def rendered_turns(battle: Battle) -> list[dict]:
    """Every turn of the conversation, in order, with its prompt and both
    answers rendered to safe HTML (the sources stay for the copy buttons)."""
    turns = battle.turns or [{"prompt": battle.prompt, "a": battle.response_a, "b": battle.response_b}]
    return [
        {
            "prompt": t.get("prompt", ""),
            "a": t.get("a", ""),
            "b": t.get("b", ""),
            "prompt_html": render_markdown(t.get("prompt", "")),
            "a_html": render_markdown(t.get("a", "")),
            "b_html": render_markdown(t.get("b", "")),
        }
        for t in turns
    ]


def live_page(request, voter):
    """The voter's unvoted live battle (still streaming or answered), or an empty composer."""
    horizon = timezone.now() - timedelta(seconds=settings.ARENA_VOTE_WINDOW_SECONDS or 86400)
    battle = (
        Battle.objects.filter(
            voter=voter,
            status__in=[Battle.Status.PENDING, Battle.Status.READY],
            model_a__provider_kind=ArenaModel.Provider.OPENAI,
            created_at__gte=horizon,
        )
        .order_by("-created_at")
        .first()
    )
    context = {
        "battle_id": str(battle.id) if battle else "",
        "status": battle.status if battle else "",
        "turns": rendered_turns(battle) if battle else [],
        "max_turns": settings.ARENA_MAX_TURNS,
        "max_chars": settings.ARENA_MAX_PROMPT_CHARS,
    }
    return render(request, "arena/live.html", context)
