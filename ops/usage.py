"""A usage point's daily totals for its admin page: per local day over the last 13 months,
delivered and received (flowDirection 1 and 19, docs/espi-model.md), in the series' unit.

Read from the daily rollups when they exist (`ingest.models.DailyRollup`, kept at import);
otherwise summed from the readings of the chosen series for those 13 months only (one usage
point, one page: bounded, never the whole table).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from gascap.pge.espi.codes import UOM_LABELS

DELIVERED, RECEIVED = 1, 19
MONTHS = 13


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def chart_window(*, today: date) -> tuple[date, date]:
    """The last 13 months up to today (local)."""
    first = today.replace(day=1)
    for _ in range(MONTHS - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return first, today


def series_pick(usage_point: Any) -> dict[int, Any]:
    """The series drawn per flow direction: the one with a known unit and the most recent
    data (a usage point may hold hourly and 15-minute series of the same energy)."""
    chosen: dict[int, Any] = {}
    for series in usage_point.series.select_related("reading_type"):
        rt = series.reading_type
        if rt is None:
            continue
        direction = RECEIVED if rt.flow_direction == RECEIVED else DELIVERED
        last = series.readings.order_by("-start").values_list("start", flat=True).first()
        if last is None:
            continue
        if direction not in chosen or last > chosen[direction][1]:
            chosen[direction] = (series, last)
    return {direction: series for direction, (series, _) in chosen.items()}


def daily_totals(*, series: Any, first_day: date, last_day: date) -> dict[date, float]:
    """Scaled totals per local day (days without data are absent)."""
    from ingest import models as ingest_models

    multiplier = series.reading_type.power_of_ten_multiplier or 0
    rollup = getattr(ingest_models, "DailyRollup", None)
    if rollup is not None:
        rows = rollup.objects.filter(
            series=series, day__gte=first_day, day__lte=last_day
        ).values_list("day", "value_sum")
    else:
        zone = _zone()
        start = first_day
        rows = (
            series.readings.filter(
                start__gte=_midnight(start, zone),
                start__lt=_midnight(last_day + timedelta(days=1), zone),
            )
            .annotate(day=TruncDate("start", tzinfo=zone))
            .order_by()
            .values("day")
            .annotate(total=Sum("value"), n=Count("start"))
            .values_list("day", "total")
        )
    return {
        day: float(Decimal(total).scaleb(multiplier)) for day, total in rows if total is not None
    }


def _midnight(day: date, zone: ZoneInfo) -> Any:
    from datetime import datetime

    return datetime(day.year, day.month, day.day, tzinfo=zone)


def usage_point_chart(*, usage_point: Any, today: date) -> dict[str, Any]:
    """Everything the page's chart needs: window, totals per direction, unit."""
    first, last = chart_window(today=today)
    picked = series_pick(usage_point)
    delivered = picked.get(DELIVERED)
    received = picked.get(RECEIVED)
    reference = delivered or received
    unit = ""
    if reference is not None and reference.reading_type.uom is not None:
        unit = UOM_LABELS.get(reference.reading_type.uom, f"uom {reference.reading_type.uom}")
    return {
        "first_day": first,
        "last_day": last,
        "delivered": daily_totals(series=delivered, first_day=first, last_day=last)
        if delivered
        else {},
        "received": daily_totals(series=received, first_day=first, last_day=last)
        if received
        else {},
        "unit": unit,
    }
