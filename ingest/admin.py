"""ingest's admin: notifications and fetches (read-only, with attempts, errors, timings and
a confirmed "replay" action that re-queues and never runs inline), and the reading storage
(usage points with their data coverage, series, revisions) — all read-only. Nothing here
holds a token: notifications are stored without credential headers and fetches carry ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ingest.data_requests import series_missing_days
from ingest.models import (
    Fetch,
    FetchAttempt,
    MeterReading,
    Notification,
    ReadingRevision,
    ReadingType,
    UsagePoint,
)
from ingest.sweeper import fetches_replay, notifications_replay


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records are written by the pipeline only; operators look and replay."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _confirm_replay(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    what: str,
    action: str,
    replay: Any,
) -> HttpResponse | None:
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(
            request,
            "admin/ingest/replay_confirm.html",
            {
                **modeladmin.admin_site.each_context(request),
                "objects": list(queryset),
                "what": what,
                "action": action,
                "title": f"Replay {what}",
            },
        )
    rows = list(queryset)
    count = replay([row.pk for row in rows])
    for row in rows:
        modeladmin.log_change(request, row, "Replayed (re-queued)")
    modeladmin.message_user(
        request, f"Re-queued {count} of {len(rows)} {what}.", level=messages.SUCCESS
    )
    return None


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

    @admin.action(description="Replay (re-queue) the selected notifications")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _confirm_replay(
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
        "finished_at",
        "next_attempt_at",
        "bytes_received",
        "readings_new",
        "readings_updated",
        "readings_unchanged",
        "error",
        "traceback",
    )
    readonly_fields = fields

    @admin.display(description="run time (s)")
    def seconds(self, obj: Fetch) -> str:
        if obj.started_at and obj.finished_at:
            return f"{(obj.finished_at - obj.started_at).total_seconds():.1f}"
        return "-"

    @admin.action(description="Replay (re-queue) the selected fetches")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return _confirm_replay(
            self,
            request,
            queryset,
            what="fetches",
            action="replay",
            replay=lambda ids: fetches_replay(fetch_ids=ids),
        )


class MeterReadingInline(ReadOnlyInline):
    model = MeterReading
    fields = ("meter_reading_id", "reading_type", "reading_type_href", "created_at")
    readonly_fields = fields


@admin.register(UsagePoint)
class UsagePointAdmin(ReadOnlyAdmin):
    list_display = (
        "usage_point_id",
        "service_kind",
        "first_reading",
        "last_reading",
        "reading_count",
        "missing_days",
    )
    search_fields = ("usage_point_id", "href")
    list_per_page = 50
    inlines = [MeterReadingInline]
    fields = (
        "usage_point_id",
        "href",
        "service_kind",
        "status",
        "created_at",
        "updated_at",
        "first_reading",
        "last_reading",
        "reading_count",
        "missing_days",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                first=Min("series__readings__start"),
                last=Max("series__readings__start"),
                count=Count("series__readings"),
            )
        )

    @admin.display(description="first reading", ordering="first")
    def first_reading(self, obj: UsagePoint) -> Any:
        return obj.first  # type: ignore[attr-defined]

    @admin.display(description="last reading", ordering="last")
    def last_reading(self, obj: UsagePoint) -> Any:
        return obj.last  # type: ignore[attr-defined]

    @admin.display(description="readings", ordering="count")
    def reading_count(self, obj: UsagePoint) -> int:
        return obj.count  # type: ignore[attr-defined]

    @admin.display(description="days with gaps (audit window)")
    def missing_days(self, obj: UsagePoint) -> str:
        last_day = timezone.localdate(timezone=_zone()) - timedelta(days=2)
        first_day = last_day - timedelta(days=int(settings.GASCAP_INGEST_GAP_AUDIT_DAYS) - 1)
        days: set = set()
        for series in obj.series.select_related("reading_type"):
            days.update(
                series_missing_days(meter_reading=series, first_day=first_day, last_day=last_day)
            )
        if not days:
            return "none"
        return ", ".join(day.isoformat() for day in sorted(days))


def _zone():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


@admin.register(MeterReading)
class MeterReadingAdmin(ReadOnlyAdmin):
    list_display = ("meter_reading_id", "usage_point", "reading_type", "units_known", "created_at")
    list_filter = ("reading_type__uom",)
    search_fields = ("meter_reading_id", "href", "usage_point__usage_point_id")
    fields = (
        "usage_point",
        "meter_reading_id",
        "href",
        "reading_type",
        "reading_type_href",
        "created_at",
        "latest_readings",
    )
    readonly_fields = fields

    @admin.display(boolean=True, description="units known")
    def units_known(self, obj: MeterReading) -> bool:
        return obj.units_known

    @admin.display(description="latest readings (raw value, 10^multiplier of the uom)")
    def latest_readings(self, obj: MeterReading) -> str:
        # IntervalReading has a composite primary key, which the admin cannot page through:
        # its latest rows are shown here instead.
        rows = obj.readings.order_by("-start").values_list(
            "start", "duration", "value", "quality", "cost"
        )[:96]
        if not rows:
            return "none"
        return format_html(
            "<table><tr><th>start</th><th>duration</th><th>value</th><th>quality</th>"
            "<th>cost</th></tr>{}</table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
            ),
        )


@admin.register(ReadingType)
class ReadingTypeAdmin(ReadOnlyAdmin):
    list_display = (
        "href",
        "uom",
        "power_of_ten_multiplier",
        "flow_direction",
        "interval_length",
        "commodity",
    )
    search_fields = ("href",)


@admin.register(ReadingRevision)
class ReadingRevisionAdmin(ReadOnlyAdmin):
    list_display = (
        "meter_reading",
        "start",
        "duration",
        "old_value",
        "new_value",
        "old_quality",
        "new_quality",
        "source_label",
        "received_at",
    )
    list_filter = ("received_at",)
