"""The pipeline records' admin: notifications and fetches (read-only, with attempts, errors,
timings and a confirmed "replay" action that needs its own permission —
`ingest.replay_notification` / `ingest.replay_fetch` — re-queues, never runs inline, and
writes a LogEntry per row). Nothing here holds a token: notifications are stored without
credential headers and fetches carry ids."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from ingest.admin.base import ReadOnlyAdmin, ReadOnlyInline, replay_confirmed
from ingest.models import Fetch, FetchAttempt, Notification
from ingest.replay import fetches_replay, notifications_replay


class FetchInline(ReadOnlyInline):
    model = Fetch
    fk_name = "notification"
    fields = ("kind", "subscription_id", "status", "reason", "attempts", "created_at")
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "received_at",
        "status",
        "reason",
        "body_size",
        "resource_count",
        "attempts",
        "remote_addr",
    )
    list_filter = ("status", "reason", "received_at")
    search_fields = ("sha256",)
    date_hierarchy = "received_at"
    actions = ["replay"]
    inlines = [FetchInline]
    fields = (
        "status",
        "reason",
        "received_at",
        "started_at",
        "runner",
        "processed_at",
        "attempts",
        "remote_addr",
        "sha256",
        "body_size",
        "body_truncated",
        "duplicate_of",
        "resource_count",
        "skipped_count",
        "headers",
        "body_display",
        "error",
        "traceback",
    )
    readonly_fields = fields

    @admin.display(description="body (as received)")
    def body_display(self, obj: Notification) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.body_text())

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ingest.replay_notification")

    @admin.action(
        description="Replay (re-queue) the selected notifications", permissions=["replay"]
    )
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return replay_confirmed(
            self,
            request,
            queryset,
            what="notifications",
            action="replay",
            replay=lambda ids: notifications_replay(notification_ids=ids),
        )


class FetchAttemptInline(ReadOnlyInline):
    model = FetchAttempt
    show_change_link = False
    fields = (
        "started_at",
        "status_code",
        "outcome",
        "error_code",
        "duration_ms",
        "bytes_received",
        "error_excerpt",
    )
    readonly_fields = fields


@admin.register(Fetch)
class FetchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "subscription_id",
        "status",
        "reason",
        "attempts",
        "readings_new",
        "readings_updated",
        "readings_unchanged",
        "seconds",
    )
    list_filter = ("status", "kind", "reason", "created_at")
    search_fields = ("subscription_id", "url")
    date_hierarchy = "created_at"
    actions = ["replay"]
    inlines = [FetchAttemptInline]
    fields = (
        "url",
        "kind",
        "subscription_id",
        "status",
        "reason",
        "attempts",
        "notification",
        "parent",
        "created_at",
        "started_at",
        "runner",
        "finished_at",
        "next_attempt_at",
        "bytes_received",
        "readings_new",
        "readings_updated",
        "readings_unchanged",
        "readings_stale",
        "usage_points_skipped",
        "error",
        "traceback",
    )
    readonly_fields = fields

    @admin.display(description="run time (s)")
    def seconds(self, obj: Fetch) -> str:
        if obj.started_at and obj.finished_at:
            return f"{(obj.finished_at - obj.started_at).total_seconds():.1f}"
        return "-"

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ingest.replay_fetch")

    @admin.action(description="Replay (re-queue) the selected fetches", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return replay_confirmed(
            self,
            request,
            queryset,
            what="fetches",
            action="replay",
            replay=lambda ids: fetches_replay(fetch_ids=ids),
        )
