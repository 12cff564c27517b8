"""API keys in the operators' admin: create (the key is shown once, in the success message),
revoke (an action), never the digest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from api.keys import api_key_create, api_key_revoke
from api.models import ApiKey, ApiScope


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
class ApiKeyAdmin(admin.ModelAdmin):
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
        obj.pk = key.pk
        obj.__dict__.update({f.attname: getattr(key, f.attname) for f in key._meta.concrete_fields})
        # Shown by response_add on the page itself: never in a message (messages may live in
        # a cookie) and never again after that page.
        request._api_key_plaintext = plaintext  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None) -> Any:
        plaintext = getattr(request, "_api_key_plaintext", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "api/admin_key_created.html",
            {
                **self.admin_site.each_context(request),
                "key": obj,
                "plaintext": plaintext,
                "opts": self.model._meta,
                "title": "API key created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        now = timezone.now()
        for key in queryset:
            api_key_revoke(key=key, now=now)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
