"""API keys in the operators' admin: create (the key is shown once, on the page after "add":
`gascap.admin_secret`), revoke (an action), never the digest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from api.keys import api_key_create, api_key_revoke
from api.models import ApiKey, ApiScope
from gascap.admin_secret import SecretShownOnceAdmin


class ApiKeyCreateForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        initial=[ApiScope.READ],
        widget=forms.CheckboxSelectMultiple,
        label="Scopes",
    )

    class Meta:
        model = ApiKey
        fields = ("name",)


@admin.register(ApiKey)
class ApiKeyAdmin(SecretShownOnceAdmin):
    created_template = "api/admin_key_created.html"
    created_title = "API key created"
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_keys"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("name", "scope_choices")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return  # keys are immutable: revoke and create another
        key, plaintext = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            now=timezone.now(),
        )
        self.secret_created(request, obj, key, plaintext)

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        now = timezone.now()
        for key in queryset:
            api_key_revoke(key=key, now=now)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
