"""The parts of a usage point's admin page that ops draws: coverage (first/last reading, one
index lookup per series), the 13-month daily chart (ops.usage + ops.charts, server-drawn
SVG), the latest readings of the charted series and the latest bills (UsageSummary)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ops.charts import daily_totals_svg
from ops.usage import DELIVERED, RECEIVED, series_pick, usage_point_chart


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return timezone.localtime(moment, _zone()).strftime("%Y-%m-%d %H:%M %Z")


def usage_point_coverage(usage_point: Any) -> tuple[datetime | None, datetime | None]:
    """(first, last) reading start over the usage point's series: per series the first and
    the last row of the primary key (series, start, duration), so two index lookups each."""
    cached = getattr(usage_point, "_ops_coverage", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    firsts: list[datetime] = []
    lasts: list[datetime] = []
    for series in usage_point.series.all():
        starts = series.readings.values_list("start", flat=True)
        first = starts.order_by("start").first()
        if first is not None:
            firsts.append(first)
            lasts.append(starts.order_by("-start").first())
    coverage = (min(firsts) if firsts else None, max(lasts) if lasts else None)
    usage_point._ops_coverage = coverage
    return coverage


def usage_point_chart_html(*, usage_point: Any) -> SafeString:
    today = timezone.localtime(timezone.now(), _zone()).date()
    data = usage_point_chart(usage_point=usage_point, today=today)
    if not data["delivered"] and not data["received"]:
        return format_html("{}", "no readings in the last 13 months")
    svg = daily_totals_svg(
        first_day=data["first_day"],
        last_day=data["last_day"],
        delivered=data["delivered"],
        received=data["received"],
        unit=data["unit"],
    )
    days = (data["last_day"] - data["first_day"]).days + 1
    with_data = len(set(data["delivered"]) | set(data["received"]))
    legend = format_html(
        '<p class="help">blue: delivered; orange (below the axis): received; red ticks: days '
        "without data ({} of {} days have data)</p>",
        with_data,
        days,
    )
    return mark_safe(f'<div class="gascap-usage-chart">{svg}</div>') + legend  # noqa: S308


def usage_point_latest_html(*, usage_point: Any, limit: int = 48) -> SafeString:
    picked = series_pick(usage_point)
    rows: list[tuple[str, str, str]] = []
    for direction, label in ((DELIVERED, "delivered"), (RECEIVED, "received")):
        series = picked.get(direction)
        if series is None:
            continue
        rt = series.reading_type
        for start, value in series.readings.order_by("-start").values_list("start", "value")[
            :limit
        ]:
            rows.append((label, _local(start), format(Decimal(value).scaleb(rt.multiplier), "f")))
    if not rows:
        return format_html("{}", "none")
    return format_html(
        "<table><tr><th>flow</th><th>start</th><th>value</th></tr>{}</table>",
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )


def usage_point_bills_html(*, usage_point: Any, limit: int = 13) -> SafeString:
    summaries = usage_point.summaries.order_by("-billing_start")[:limit]
    rows = [
        (
            _local(s.billing_start),
            f"{(s.billing_duration or 0) // 86400} days",
            "-"
            if s.bill_last_period is None
            else format(Decimal(s.bill_last_period).scaleb(-5), "f"),
            "-" if s.overall_consumption is None else format(s.overall_consumption, "f"),
            s.tariff_profile or "-",
        )
        for s in summaries
    ]
    if not rows:
        return format_html("{}", "none")
    return format_html(
        "<table><tr><th>billing period start</th><th>length</th><th>bill</th>"
        "<th>consumption</th><th>tariff</th></tr>{}</table>",
        format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        ),
    )
