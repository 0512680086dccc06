"""Admin for the judges (arena.Judge): registered like live models, with
provider settings as separate fields (the API key by variable name), a
prompt template, a daily budget of calls and a concurrency cap; activate or
pause in bulk. Imported by arena/admin.py."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from .admin import ENV_NAME_RE, ArenaModelForm
from .admin_tools import log_bulk_change
from .models import Judge
from .names import MODEL_NAME_MAX, validate_model_name

JUDGE_PROVIDER_FIELDS = ("base_url", "model", "api_key_env", "temperature", "max_tokens", "timeout")


class JudgeForm(forms.ModelForm):
    name = forms.CharField(
        max_length=MODEL_NAME_MAX, strip=False, validators=[validate_model_name],
        help_text=Judge._meta.get_field("name").help_text,
    )  # fmt: skip
    base_url = forms.CharField(
        max_length=500, label="Base URL",
        help_text="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or http://vllm:8000/v1",
    )  # fmt: skip
    model = forms.CharField(max_length=200, label="Model id at the provider")
    api_key_env = ArenaModelForm.base_fields["api_key_env"]
    temperature = forms.FloatField(required=False, min_value=0, max_value=2, initial=0.0)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=100_000, initial=1024)
    timeout = forms.FloatField(required=False, min_value=1, max_value=600, initial=60, help_text="seconds")

    class Meta:
        model = Judge
        fields = ["name", "system_prompt", "prompt_template", "daily_budget", "max_concurrency", "status",
                  "paused_reason"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.provider_settings or {}
        for name in JUDGE_PROVIDER_FIELDS:
            if name in stored:
                self.initial[name] = stored[name]

    clean_base_url = ArenaModelForm.clean_base_url

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data["api_key_env"].strip()
        if name and not ENV_NAME_RE.match(name):
            raise forms.ValidationError("enter the name of an environment variable (letters, digits, _), not the key")
        return name

    def clean_prompt_template(self) -> str:
        template = self.cleaned_data["prompt_template"]
        missing = [p for p in ("{answer_a}", "{answer_b}") if p not in template]
        if missing:
            raise forms.ValidationError(f"the template must contain {' and '.join(missing)}")
        return template

    def save(self, commit: bool = True):
        judge = super().save(commit=False)
        data = self.cleaned_data
        settings = {"base_url": data["base_url"], "model": data["model"]}
        for name in ("api_key_env", "temperature", "max_tokens", "timeout"):
            if data.get(name) not in (None, ""):
                settings[name] = data[name]
        judge.provider_settings = settings
        if commit:
            judge.save()
        return judge


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    form = JudgeForm
    list_display = ["name", "status", "daily_budget", "calls_used_today", "max_concurrency", "consecutive_failures",
                    "paused_reason"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["name"]
    actions = ["activate", "pause"]
    readonly_fields = ["consecutive_failures", "paused_at", "calls_day", "calls_today", "created_at"]

    @admin.display(description="calls today")
    def calls_used_today(self, obj: Judge) -> int:
        return obj.calls_today if obj.calls_day == timezone.now().date() else 0

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data:
            if obj.status == Judge.Status.ACTIVE:
                obj.consecutive_failures, obj.paused_reason, obj.paused_at = 0, "", None
            else:
                obj.paused_reason = obj.paused_reason or f"paused by {request.user.get_username()}"
                obj.paused_at = timezone.now()
        super().save_model(request, obj, form, change)

    def _set_status(self, request, queryset, status: str) -> None:
        changing = list(queryset.exclude(status=status))
        ids = [j.id for j in changing]
        if status == Judge.Status.ACTIVE:
            Judge.objects.filter(id__in=ids).update(status=status, consecutive_failures=0, paused_reason="",
                                                    paused_at=None)  # fmt: skip
        else:
            Judge.objects.filter(id__in=ids).update(
                status=status, paused_reason=f"paused by {request.user.get_username()}", paused_at=timezone.now()
            )
        log_bulk_change(request, Judge, changing, f"Set status to {status}.")
        self.message_user(request, f"{len(changing)} judge(s) now {status}.", messages.SUCCESS)

    @admin.action(description="Activate selected judges", permissions=["change"])
    def activate(self, request, queryset):
        self._set_status(request, queryset, Judge.Status.ACTIVE)

    @admin.action(description="Pause selected judges", permissions=["change"])
    def pause(self, request, queryset):
        self._set_status(request, queryset, Judge.Status.PAUSED)
