"""Webhooks out in the operators' admin: endpoints (the secret is shown once, on the page
after "add"; never again), events, and deliveries with their attempts and a replay action
(re-queued, never sent inline; its own permission)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from gascap.admin_secret import SecretShownOnceAdmin
from webhooks.delivery import deliveries_replay
from webhooks.endpoints import EndpointInvalid, endpoint_create, url_check
from webhooks.models import (
    EVENT_TYPES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)


class EndpointForm(forms.ModelForm):
    event_choices = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Events (none: all)",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["event_choices"].initial = self.instance.event_types

    def clean_url(self) -> str:
        try:
            return url_check(self.cleaned_data["url"])
        except EndpointInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SecretShownOnceAdmin):
    created_template = "webhooks/admin_endpoint_created.html"
    created_title = "Webhook endpoint created"
    form = EndpointForm
    list_display = ("url", "description", "active", "event_types", "secret_prefix", "created_at")
    readonly_fields = ("secret_prefix", "created_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        base = ["url", "description", "active", "event_choices"]
        return base if obj is None else [*base, "secret_prefix", "created_at"]

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        types = form.cleaned_data.get("event_choices") or []
        if change:
            obj.event_types = list(types)
            obj.save()
            return
        endpoint, secret = endpoint_create(
            url=obj.url, event_types=types, description=obj.description, now=timezone.now()
        )
        self.secret_created(request, obj, endpoint, secret)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("started_at", "status_code", "duration_ms", "error", "response_excerpt")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event__type")
    readonly_fields = (
        "event",
        "endpoint",
        "status",
        "runs",
        "attempts",
        "next_attempt_at",
        "started_at",
        "delivered_at",
        "last_status_code",
        "last_error",
        "created_at",
    )
    inlines = (AttemptInline,)
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_webhookdelivery")

    @admin.action(description="Replay the selected deliveries (re-queue)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = deliveries_replay(
            delivery_ids=list(queryset.values_list("pk", flat=True)), now=timezone.now()
        )
        self.message_user(request, f"Re-queued {count} deliveries.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("public_id", "type", "created_at")
    list_filter = ("type",)
    readonly_fields = ("public_id", "type", "payload", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
