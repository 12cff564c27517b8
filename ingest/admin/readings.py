"""The reading storage's admin: usage points (with their subscription, customer and data
coverage), series, reading types and revisions, all read-only. How codes, units and times
read is in `ingest.admin.display`."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from gascap.pge.espi.codes import (
    QUALITIES,
    SERVICE_KINDS,
    UOM_LABELS,
    code_label,
    duration_describe,
)
from ingest.admin.base import ReadOnlyAdmin, ReadOnlyInline
from ingest.admin.display import (
    RT_CODES,
    code_filter,
    local_text,
    local_zone,
    reading_type_text,
    rt_code_display,
    scaled,
    series_text,
)
from ingest.models import IntervalReading, MeterReading, ReadingRevision, ReadingType, UsagePoint
from ingest.selectors import series_missing_days
from ops.usage_page import (
    usage_point_bills_html,
    usage_point_chart_html,
    usage_point_coverage,
    usage_point_latest_html,
)

if TYPE_CHECKING:
    from customers.models import Authorization


class MeterReadingInline(ReadOnlyInline):
    model = MeterReading
    fields = ("meter_reading_id", "units", "created_at")
    readonly_fields = fields

    @admin.display(description="units")
    def units(self, obj: MeterReading) -> str:
        return reading_type_text(obj.reading_type)


@admin.register(UsagePoint)
class UsagePointAdmin(ReadOnlyAdmin):
    # The list reads no aggregate over the readings (issue 14): first and last reading are
    # one index lookup per series (`ops.usage.usage_point_coverage`); the reading count, an
    # aggregate over one usage point's readings, is on the usage point's page only.
    list_display = (
        "usage_point_id",
        "service",
        "subscription",
        "first_reading",
        "last_reading",
        "missing_days",
    )
    list_filter = (code_filter("service_kind", SERVICE_KINDS, "service kind"),)
    search_fields = ("usage_point_id", "href")
    list_per_page = 50
    inlines = [MeterReadingInline]
    fields = (
        "usage_point_id",
        "href",
        "service",
        "status",
        "subscription",
        "customer",
        "created_at",
        "updated_at",
        "first_reading",
        "last_reading",
        "reading_count",
        "missing_days",
        "daily_chart",
        "latest_readings",
        "bills",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("authorization__customer")

    @admin.display(description="service kind", ordering="service_kind")
    def service(self, obj: UsagePoint) -> str:
        return code_label(SERVICE_KINDS, obj.service_kind) or "-"

    def _authorization(self, obj: UsagePoint) -> Authorization | None:
        # The consent the fetch bound the usage point to: never derived from its href
        # (docs/espi.md, "Which usage points a document may write").
        return obj.authorization

    @admin.display(description="subscription")
    def subscription(self, obj: UsagePoint) -> str:
        authorization = self._authorization(obj)
        if authorization is None:
            return "not bound to a consent (an operator's file)"
        url = reverse("admin:customers_authorization_change", args=[authorization.pk])
        return format_html(
            '<a href="{}">{}</a> ({})',
            url,
            authorization.subscription_id,
            authorization.get_status_display(),
        )

    @admin.display(description="customer")
    def customer(self, obj: UsagePoint) -> str:
        authorization = self._authorization(obj)
        if authorization is None:
            return "-"
        url = reverse("admin:customers_customer_change", args=[authorization.customer_id])
        return format_html('<a href="{}">{}</a>', url, authorization.customer)

    @admin.display(description="first reading")
    def first_reading(self, obj: UsagePoint) -> str:
        return local_text(usage_point_coverage(obj)[0])

    @admin.display(description="last reading")
    def last_reading(self, obj: UsagePoint) -> str:
        return local_text(usage_point_coverage(obj)[1])

    @admin.display(description="readings")
    def reading_count(self, obj: UsagePoint) -> int:
        return IntervalReading.objects.filter(meter_reading__usage_point=obj).count()

    @admin.display(description="daily totals, last 13 months (local days)")
    def daily_chart(self, obj: UsagePoint) -> str:
        return usage_point_chart_html(usage_point=obj)

    @admin.display(description="latest readings (local time)")
    def latest_readings(self, obj: UsagePoint) -> str:
        return usage_point_latest_html(usage_point=obj)

    @admin.display(description="bills (usage summaries)")
    def bills(self, obj: UsagePoint) -> str:
        return usage_point_bills_html(usage_point=obj)

    @admin.display(description="days with gaps (audit window)")
    def missing_days(self, obj: UsagePoint) -> str:
        last_day = timezone.localdate(timezone=local_zone()) - timedelta(days=2)
        first_day = last_day - timedelta(days=int(settings.GASCAP_INGEST_GAP_AUDIT_DAYS) - 1)
        days: set = set()
        for series in obj.series.select_related("reading_type"):
            days.update(
                series_missing_days(meter_reading=series, first_day=first_day, last_day=last_day)
            )
        if not days:
            return "none"
        return ", ".join(day.isoformat() for day in sorted(days))


@admin.register(MeterReading)
class MeterReadingAdmin(ReadOnlyAdmin):
    list_display = ("meter_reading_id", "usage_point", "units", "units_known", "created_at")
    list_filter = (code_filter("reading_type__uom", UOM_LABELS, "unit"),)
    list_select_related = ("usage_point", "reading_type")
    search_fields = ("meter_reading_id", "href", "usage_point__usage_point_id")
    fields = (
        "usage_point",
        "meter_reading_id",
        "href",
        "units",
        "reading_type",
        "reading_type_href",
        "created_at",
        "latest_readings",
    )
    readonly_fields = fields

    @admin.display(description="units", ordering="reading_type__uom")
    def units(self, obj: MeterReading) -> str:
        return reading_type_text(obj.reading_type)

    @admin.display(boolean=True, description="units known")
    def units_known(self, obj: MeterReading) -> bool:
        return obj.units_known

    @admin.display(description="latest readings (local time)")
    def latest_readings(self, obj: MeterReading) -> str:
        # IntervalReading has a composite primary key, which the admin cannot page through:
        # its latest rows are shown here instead. Values are raw integers as PG&E sent them;
        # the scaled column applies 10^multiplier in the ReadingType's unit.
        rt = obj.reading_type
        rows = obj.readings.order_by("-start").values_list(
            "start", "duration", "value", "quality", "cost"
        )[:96]
        if not rows:
            return "none"
        unit = UOM_LABELS.get(rt.uom, f"uom {rt.uom}") if rt and rt.uom is not None else ""
        multiplier = rt.multiplier if rt else 0
        default_quality = rt.default_quality if rt else None
        cells = [
            (
                local_text(start),
                duration_describe(duration),
                value,
                f"{scaled(value, multiplier)} {unit}".strip() if rt else "-",
                code_label(QUALITIES, quality if quality is not None else default_quality),
                "" if cost is None else scaled(cost, -5),
            )
            for start, duration, value, quality, cost in rows
        ]
        return format_html(
            "<table><tr><th>start</th><th>duration</th><th>raw value</th><th>scaled</th>"
            "<th>quality</th><th>cost</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                cells,
            ),
        )


@admin.register(ReadingType)
class ReadingTypeAdmin(ReadOnlyAdmin):
    list_display = (
        "described",
        *(rt_code_display(*code) for code in RT_CODES[:3]),
        "interval",
        *(rt_code_display(*code) for code in RT_CODES[5:6]),
        "href",
    )
    list_filter = tuple(code_filter(*code) for code in RT_CODES[:6])
    search_fields = ("href",)
    fields = (
        "described",
        "href",
        *(rt_code_display(*code) for code in RT_CODES),
        "interval",
        "tou",
        "cpp",
        "consumption_tier",
        "signature",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description="reading type")
    def described(self, obj: ReadingType) -> str:
        return reading_type_text(obj)

    @admin.display(description="interval", ordering="interval_length")
    def interval(self, obj: ReadingType) -> str:
        if not obj.interval_length:
            return "-"
        return f"{duration_describe(obj.interval_length)} ({obj.interval_length} s)"


@admin.register(ReadingRevision)
class ReadingRevisionAdmin(ReadOnlyAdmin):
    list_display = (
        "series",
        "start",
        "duration",
        "old_value",
        "new_value",
        "old_quality_label",
        "new_quality_label",
        "stale",
        "source_label",
        "received_at",
    )
    list_filter = ("stale", "received_at")
    list_select_related = ("meter_reading__usage_point", "meter_reading__reading_type")

    @admin.display(description="series", ordering="meter_reading")
    def series(self, obj: ReadingRevision) -> str:
        return series_text(obj.meter_reading)

    @admin.display(description="old quality", ordering="old_quality")
    def old_quality_label(self, obj: ReadingRevision) -> str:
        return code_label(QUALITIES, obj.old_quality) or "-"

    @admin.display(description="new quality", ordering="new_quality")
    def new_quality_label(self, obj: ReadingRevision) -> str:
        return code_label(QUALITIES, obj.new_quality) or "-"
