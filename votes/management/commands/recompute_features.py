"""``python manage.py recompute_features``: store the text features of existing
votes again, as ``votes.features`` computes them now.

A vote's features (token and style counts, language, code, turns) are
computed once, when it is stored. After a change to ``votes/features.py``
(the CJK-aware token count, issue #13) this brings the stored votes in line:
every vote whose battle still holds the conversation is recomputed with the
same function a new vote goes through (``votes.services.text_features``),
in chunks of ``--chunk`` votes, one transaction each; only rows that change
are written. Imported votes have no battle here (their texts are not kept),
so they keep the counts the import computed; re-import them into a fresh
database to recount. Safe to run twice: the second run changes nothing.
When anything changed, a ratings recompute is requested.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from votes.models import STYLE_FIELDS, Vote
from votes.services import request_recompute, text_features

FIELDS = ["language", "is_code", "prompt_tokens", "turns", *STYLE_FIELDS]


class Command(BaseCommand):
    help = "Recompute the stored text features (token and style counts, language, code) of votes with a battle."

    def add_arguments(self, parser):
        parser.add_argument("--chunk", type=int, default=1000, help="votes per transaction (default 1000)")
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")

    def handle(self, *args, chunk: int, dry_run: bool, **opts):
        if chunk < 1:
            raise CommandError("--chunk must be at least 1")
        checked = changed = 0
        last = 0
        while True:
            with transaction.atomic():
                votes = list(
                    Vote.objects.select_for_update(of=("self",))
                    .filter(battle__isnull=False, id__gt=last)
                    .select_related("battle")
                    .order_by("id")[:chunk]
                )
                if not votes:
                    break
                last = votes[-1].id
                stale = []
                for vote in votes:
                    battle = vote.battle
                    conversation = battle.turns or [
                        {"prompt": battle.prompt, "a": battle.response_a, "b": battle.response_b}
                    ]
                    fresh = text_features(
                        battle.prompt,
                        [t["a"] for t in conversation],
                        [t["b"] for t in conversation],
                        n_turns=len(conversation),
                    )
                    if any(getattr(vote, f) != fresh[f] for f in FIELDS):
                        for f in FIELDS:
                            setattr(vote, f, fresh[f])
                        stale.append(vote)
                checked += len(votes)
                changed += len(stale)
                if stale and not dry_run:
                    Vote.objects.bulk_update(stale, FIELDS)
        without = Vote.objects.filter(battle__isnull=True).count()
        verb = "would change" if dry_run else "changed"
        self.stdout.write(
            f"{checked} votes with a battle checked, {changed} {verb}; "
            f"{without} imported votes without a battle keep their stored features"
        )
        if changed and not dry_run:
            request_recompute()
