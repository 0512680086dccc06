"""Excluding and reinstating stored votes, and banning voters: the one
write path for moderators (the admin) and for the anomaly detector.

Every change of a vote's ``excluded`` flag writes one ``VoteExclusionEvent``
(what, why, who, when) in the same transaction, and a ratings recompute is
requested after the commit. Votes are never deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from arena.models import Voter

from .models import ExclusionReason, Vote, VoteExclusionEvent
from .services import request_recompute

CHUNK = 5000  # votes per UPDATE (and per IN list)
REASON_MAX = 64
# Reasons a moderator may pick from; any other short code is accepted too.
MODERATOR_REASONS = {
    "spam": "spam or abuse",
    "test_account": "test account / internal voter",
    "duplicate": "duplicate vote",
    "identity_leak": "an answer revealed its model",
    "bad_battle": "broken battle (empty or cut-off answer)",
}
# Set and lifted only through the voter's flag (votes.anomaly): a moderator
# who excluded a vote under this reason would have it reinstated by an unflag.
SYSTEM_REASONS = {ExclusionReason.ANOMALOUS_VOTER}
_REASON_RE = re.compile(r"^[a-z0-9][a-z0-9_:.\-]*$")


class ModerationError(ValueError):
    """Bad input to a moderation call; nothing was written."""


def clean_reason(reason: str, *, system: bool = False) -> str:
    """A reason code: lower-case letters, digits and ``_ : . -``, 1–64 chars."""
    reason = (reason or "").strip().lower().replace(" ", "_")
    if not reason:
        raise ModerationError("a reason is required")
    if len(reason) > REASON_MAX:
        raise ModerationError(f"the reason is {len(reason)} characters long; at most {REASON_MAX}")
    if not _REASON_RE.match(reason):
        raise ModerationError("the reason may hold only letters, digits and _ : . -")
    if not system and reason in SYSTEM_REASONS:
        raise ModerationError(f"{reason!r} is set by flagging the voter, not by hand")
    return reason


def _ids(votes: Iterable[int] | object) -> list[int]:
    """Vote ids from a queryset (read in one query) or an iterable of ids."""
    if hasattr(votes, "values_list"):
        return list(votes.values_list("id", flat=True).order_by())
    return [int(v) for v in votes]


def exclude_votes(votes, *, reason: str, by=None, now: datetime | None = None, system: bool = False) -> list[int]:
    """Exclude the counted ones among ``votes`` (a queryset or ids) with
    ``reason``; already excluded votes keep their first reason.

    ``by``: the user deciding (None = the system). Returns the ids of the
    votes that changed. Harmless twice. Raises ModerationError for a bad reason.
    """
    reason = clean_reason(reason, system=system)
    by_id = getattr(by, "pk", by)
    now = now or timezone.now()
    return _change(
        _ids(votes),
        lambda chunk: chunk.filter(excluded=False),
        {"excluded": True, "exclusion_reason": reason, "excluded_at": now, "excluded_by_id": by_id},
        VoteExclusionEvent.Action.EXCLUDE,
        reason=reason,
        by_id=by_id,
        now=now,
    )


def reinstate_votes(
    votes, *, reason: str, by=None, now: datetime | None = None, only_reason: str | None = None
) -> list[int]:
    """Count the excluded ones among ``votes`` again; ``reason`` says why
    (recorded in the event).

    ``only_reason``: reinstate only votes excluded for that reason (the
    detector lifting its own exclusions). Without it, votes excluded as
    ``anomalous_voter`` are left alone: they follow their voter's flag.
    Returns the ids of the votes that changed. Harmless twice.
    """
    reason = clean_reason(reason, system=True)

    def reinstatable(chunk):
        chunk = chunk.filter(excluded=True)
        return (
            chunk.filter(exclusion_reason=only_reason)
            if only_reason
            else chunk.exclude(exclusion_reason__in=SYSTEM_REASONS)
        )

    return _change(
        _ids(votes),
        reinstatable,
        {"excluded": False, "exclusion_reason": "", "excluded_at": None, "excluded_by_id": None},
        VoteExclusionEvent.Action.REINSTATE,
        reason=reason,
        by_id=getattr(by, "pk", by),
        now=now or timezone.now(),
    )


def _change(ids: list[int], eligible, fields: dict, action: str, *, reason: str, by_id, now) -> list[int]:
    """Apply ``fields`` to the ``eligible`` ones among ``ids``, chunk by
    chunk, with one audit event per changed vote; ask for a recompute after
    commit if any changed. Returns the changed ids."""
    changed: list[int] = []
    with transaction.atomic():
        for start in range(0, len(ids), CHUNK):
            # Lock, then change exactly the locked rows: the events name only votes this call changed.
            chunk = Vote.objects.select_for_update().filter(id__in=ids[start : start + CHUNK])
            part = list(eligible(chunk).values_list("id", flat=True).order_by())
            if not part:
                continue
            Vote.objects.filter(id__in=part).update(**fields)
            VoteExclusionEvent.objects.bulk_create(
                [VoteExclusionEvent(vote_id=i, action=action, reason=reason, at=now, by_id=by_id) for i in part],
                batch_size=2000,
            )
            changed.extend(part)
        if changed:
            transaction.on_commit(request_recompute)
    return changed


def set_banned(voter_ids: Iterable[int], banned: bool) -> int:
    """Ban (or unban) voters: a banned voter's new votes are refused
    (votes.services.vote_record); their stored votes are untouched — flag
    the voter to exclude those. Returns how many voters changed."""
    return Voter.objects.filter(id__in=list(voter_ids)).exclude(banned=banned).update(banned=banned)
