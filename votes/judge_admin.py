"""Admin for judge votes: read-only, filtered by judge, status and verdict,
with both orders' verdicts, reasons, raw outputs and latencies. Imported by
votes/admin.py."""

from __future__ import annotations

from django.contrib import admin

from .models import JudgeVote


@admin.register(JudgeVote)
class JudgeVoteAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "model_a", "model_b", "verdict", "verdict_ab", "verdict_ba", "status", "calls",
                    "created_at"]  # fmt: skip
    list_filter = ["judge", "status", "verdict"]
    list_select_related = ["judge", "model_a", "model_b"]
    raw_id_fields = ["battle", "question"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
