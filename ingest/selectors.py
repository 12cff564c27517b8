"""Reads the admin and the gap audit share about stored data: the local days a series lacks
intervals on (`series_missing_days`, the usage point page's "days with gaps" and the gap
audit's input) and the usage points stored for a subscription."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Min

from ingest.models import IntervalReading, MeterReading, UsagePoint


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def series_missing_days(
    *, meter_reading: MeterReading, first_day: date, last_day: date
) -> list[date]:
    """Local days in [first_day, last_day] with fewer intervals than the day holds.

    PG&E's days are Pacific days (23 h / 25 h on DST days); a gas day starts at local midnight
    + 1 s, so intervals are counted by the local day their start falls in.
    """
    zone = local_zone()
    length = None
    if meter_reading.reading_type_id and meter_reading.reading_type.interval_length:
        length = meter_reading.reading_type.interval_length
    readings = IntervalReading.objects.filter(meter_reading=meter_reading)
    if length is None:
        common = readings.values("duration").annotate(n=Count("start")).order_by("-n").first()
        length = common["duration"] if common else None
    if not length:
        return []
    bounds = readings.aggregate(first=Min("start"))
    if bounds["first"] is None:
        return []
    first_day = max(first_day, bounds["first"].astimezone(zone).date())
    window_start, _ = day_bounds(first_day, zone)
    _, window_end = day_bounds(last_day, zone)
    counts: dict[date, int] = {}
    for start in readings.filter(start__gte=window_start, start__lt=window_end).values_list(
        "start", flat=True
    ):
        day = start.astimezone(zone).date()
        counts[day] = counts.get(day, 0) + 1
    missing = []
    day = first_day
    while day <= last_day:
        day_start, day_end = day_bounds(day, zone)
        # Subtracting two datetimes that share a tzinfo is wall-clock arithmetic in Python
        # (always 24 h), so measure the day in UTC: PG&E's Pacific days are 23 h (92
        # quarter-hours) on the spring-forward day and 25 h (100) on the fall-back day.
        seconds = day_end.timestamp() - day_start.timestamp()
        expected = max(1, round(seconds / length))
        if counts.get(day, 0) < expected:
            missing.append(day)
        day += timedelta(days=1)
    return missing


def subscription_usage_point_ids(*, subscription_id: str) -> list[str]:
    """Usage point ids of stored data bound to the subscription's authorization."""
    return list(
        UsagePoint.objects.filter(authorization__subscription_id=subscription_id)
        .order_by("usage_point_id")
        .values_list("usage_point_id", flat=True)
    )
