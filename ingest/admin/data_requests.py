"""The data requests' admin: one row per request a consent or the daily schedule made, read-only
(status, attempts, the windows PG&E answered, the last error, the runner, the fetch rows of
answers that carried data), filtered by status, reason, kind and origin, with a confirmed
"replay" action for FAILED/POISONED rows that needs its own permission
(`ingest.replay_datarequest`), re-queues after commit and never runs inline. Nothing here
holds a token: rows carry ids and PG&E's statuses."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join

from ingest.admin.base import ReadOnlyAdmin, ReadOnlyInline, replay_confirmed
from ingest.models import DataRequest, Fetch
from ingest.replay import data_requests_replay


class AnswerFetchInline(ReadOnlyInline):
    model = Fetch
    fk_name = "data_request"
    verbose_name_plural = "answers that carried data (or an unexpected status)"
    fields = ("kind", "status", "reason", "readings_new", "created_at")
    readonly_fields = fields


@admin.register(DataRequest)
class DataRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "origin",
        "subscription_id",
        "status",
        "reason",
        "attempts",
        "windows",
        "next_attempt_at",
        "finished_at",
    )
    list_filter = ("status", "reason", "kind", "origin", "created_at")
    search_fields = ("subscription_id",)
    date_hierarchy = "created_at"
    actions = ["replay"]
    inlines = [AnswerFetchInline]
    fields = (
        "kind",
        "origin",
        "authorization",
        "subscription_id",
        "status",
        "reason",
        "attempts",
        "start",
        "end",
        "requested_until",
        "windows",
        "answers_display",
        "created_at",
        "started_at",
        "runner",
        "finished_at",
        "next_attempt_at",
        "error",
        "traceback",
    )
    readonly_fields = fields

    @admin.display(description="PG&E's answers (window: status)")
    def answers_display(self, obj: DataRequest) -> str:
        if not obj.answers:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} to {}: {}</li>",
                (
                    (answer.get("start", "?"), answer.get("end", "?"), answer.get("status", "?"))
                    for answer in obj.answers
                ),
            ),
        )

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ingest.replay_datarequest")

    @admin.action(
        description="Replay (re-queue) the selected failed or poisoned data requests",
        permissions=["replay"],
    )
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return replay_confirmed(
            self,
            request,
            queryset,
            what="data requests",
            action="replay",
            replay=lambda ids: data_requests_replay(data_request_ids=ids),
        )
