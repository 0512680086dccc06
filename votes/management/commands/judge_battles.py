"""Judge pairs of an answer set's answers before anyone votes on them.

    python manage.py judge_battles --judge NAME [--answer-set SET] [--limit N] [--inline]

For every question (of SET, or of every answer set), each pair of active
models that both answered it and that the judge has not judged yet, nor
anyone voted on, becomes a pending judge vote, queued for the worker
(``votes.judge``), or judged here, one after the other, with ``--inline``.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from arena.models import AnswerSet, Judge
from votes import judging
from votes.judge_tasks import judge as judge_task
from votes.judge_tasks import request_judge_boards


class Command(BaseCommand):
    help = "Queue a judge's verdicts on new pairs of pre-generated answers (before anyone votes)."

    def add_arguments(self, parser):
        parser.add_argument("--judge", required=True, help="the judge's name (admin: Judges)")
        parser.add_argument("--answer-set", default=None, help="only this answer set's questions")
        parser.add_argument("--limit", type=int, default=None, help="at most this many new pairs")
        parser.add_argument("--inline", action="store_true", help="judge here instead of queueing for the worker")

    def handle(self, *args, judge: str, answer_set: str | None, limit: int | None, inline: bool, **options):
        found = Judge.objects.filter(name=judge).first()
        if found is None:
            raise CommandError(f"no judge {judge!r}; register it in the admin under Judges")
        if found.status != Judge.Status.ACTIVE:
            raise CommandError(
                f"judge {judge!r} is paused ({found.paused_reason or 'by an operator'}); activate it first"
            )
        if answer_set is not None and not AnswerSet.objects.filter(name=answer_set).exists():
            raise CommandError(f"no answer set {answer_set!r}")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        ids = judging.new_pairs(found, answer_set=answer_set, limit=limit)
        if not inline:
            for jid in ids:
                judge_task.delay(jid)
            self.stdout.write(f"queued {len(ids)} new pair{'s' if len(ids) != 1 else ''} for judge {found.name}")
            return
        states: dict[str, int] = {}
        for jid in ids:
            state = judging.judge_one(jid)
            states[state] = states.get(state, 0) + 1
        if states.get("done"):
            request_judge_boards()
        summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "nothing new"
        self.stdout.write(f"judged {len(ids)} new pair{'s' if len(ids) != 1 else ''} for judge {found.name}: {summary}")
