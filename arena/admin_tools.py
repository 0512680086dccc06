"""Pieces the admin modules of all three apps share: a paginator that does
not count a million rows, the admin-log entry for a bulk action, and the
"either side" model filter for battles and votes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

# Up to this many changed objects, a bulk action writes one admin-log entry
# per object (each links to it); above, one summary entry for the action.
LOG_PER_OBJECT_MAX = 1000


def planner_rows(qs: QuerySet) -> int:
    """PostgreSQL's estimate of the number of rows ``qs`` returns (EXPLAIN,
    no execution; about a millisecond whatever the table size)."""
    compiler = qs.order_by().query.get_compiler(using=qs.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # e.g. qs.none(): nothing to ask
        return 0
    with connections[qs.db].cursor() as cur:
        cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cur.fetchone()[0]
    if isinstance(plan, str):
        import json

        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A changelist paginator for tables of millions of rows.

    On PostgreSQL, the planner's estimate decides: when it is under
    ``exact_below`` the rows are counted exactly (cheap), otherwise the
    estimate is shown as "about N" and the page links stop after the current
    window (no jump to a last page that OFFSET would have to walk to).
    Elsewhere (SQLite, a laptop's small database) the count is exact.
    """

    exact_below = 20_000
    estimated = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, QuerySet) or connections[qs.db].vendor != "postgresql":
            return super().count
        estimate = planner_rows(qs)
        if estimate < self.exact_below:
            return qs.count()
        self.estimated = True
        return estimate

    def get_elided_page_range(self, number=1, *, on_each_side=3, on_ends=2) -> Iterator:
        if not self.estimated:
            yield from super().get_elided_page_range(number, on_each_side=on_each_side, on_ends=on_ends)
            return
        number = self.validate_number(number)
        first = max(1, number - on_each_side)
        if first > on_ends + 1:
            yield from range(1, on_ends + 1)
            yield self.ELLIPSIS
        else:
            first = 1
        last = min(self.num_pages, number + on_each_side)
        yield from range(first, last + 1)
        if last < self.num_pages:
            yield self.ELLIPSIS


def log_bulk_change(request, model, objects: Sequence, message: str) -> None:
    """Record a bulk action in the admin log: one entry per object for small
    sets, one summary entry (no object) for large ones (``objects`` may then
    be just their ids)."""
    if not objects:
        return
    if len(objects) <= LOG_PER_OBJECT_MAX:
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=list(objects), action_flag=CHANGE, change_message=message
        )
        return
    opts = model._meta
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type=ContentType.objects.get_for_model(model),
        object_id=None,
        object_repr=f"{len(objects):,} {opts.verbose_name_plural}"[:200],
        action_flag=CHANGE,
        change_message=message,
    )


class EitherSideModelFilter(admin.SimpleListFilter):
    """Battles or votes with this model on either side."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        from .models import ArenaModel

        return [
            (str(pk), name) for pk, name in ArenaModel.objects.order_by(Lower("name"), "name").values_list("pk", "name")
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(Q(model_a_id=int(value)) | Q(model_b_id=int(value)))
