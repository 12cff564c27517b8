"""Totals per local period (America/Los_Angeles, `GASCAP_LOCAL_TIME_ZONE`) for one usage
point, per series: the exact sum, the number of readings, the cost, and whether the
readings cover the whole period.

- A reading counts in the period that holds its start: PG&E's gas days start at local
  00:00:01 (docs/pge-protocol.md) and count in the day they belong to.
- Days are local days: 23 hours on the spring DST change, 25 hours on the autumn one; a
  period is complete when its readings' durations add up to at least its real length.
- Days and months are read from the stored rollups (ingest.rollups), hours summed from the
  readings; a request covers the whole periods its [start, end) overlaps.
- Hours are grouped by UTC hour (Pacific offsets are whole hours), so the autumn day's two
  local 01:00 hours stay two periods.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from ingest.models import DailyRollup, IntervalReading, MeterReading, MonthlyRollup

INTERVALS = ("hour", "day", "month")


@dataclass
class PeriodTotal:
    start: datetime
    end: datetime
    value: int = 0  # raw, 10^multiplier of the series' unit
    readings: int = 0
    covered_seconds: int = 0
    cost: int | None = None  # 10^-5 currency

    @property
    def complete(self) -> bool:
        return self.covered_seconds >= int((self.end - self.start).total_seconds())


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def period_of(moment: datetime, interval: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) of the local period holding `moment` (aware datetimes)."""
    if interval == "hour":
        start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return start.astimezone(zone), (start + timedelta(hours=1)).astimezone(zone)
    local = moment.astimezone(zone)
    if interval == "day":
        day = local.date()
        return _local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone)
    first = local.date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, zone), _local_midnight(following, zone)


def totals_fold(
    rows: Iterable[tuple[datetime, int, int, int | None]], *, interval: str, zone: ZoneInfo
) -> list[PeriodTotal]:
    """Fold (start, duration, value, cost) rows of one series into period totals."""
    periods: dict[datetime, PeriodTotal] = {}
    for moment, duration, value, cost in rows:
        start, end = period_of(moment, interval, zone)
        key = start.astimezone(UTC)
        total = periods.get(key)
        if total is None:
            total = periods[key] = PeriodTotal(start=start, end=end)
        total.value += value
        total.readings += 1
        total.covered_seconds += duration
        if cost is not None:
            total.cost = (total.cost or 0) + cost
    return [periods[key] for key in sorted(periods)]


def series_totals_from_readings(
    *, series: MeterReading, interval: str, start: datetime, end: datetime
) -> list[PeriodTotal]:
    """Totals recomputed from the readings themselves (the reference the rollups must equal)."""
    zone = local_zone()
    rows = (
        IntervalReading.objects.filter(meter_reading=series, start__gte=start, start__lt=end)
        .order_by("start")
        .values_list("start", "duration", "value", "cost")
    )
    return totals_fold(rows.iterator(chunk_size=5000), interval=interval, zone=zone)


def series_totals_from_rollups(
    *, series: MeterReading, interval: str, start: datetime, end: datetime
) -> list[PeriodTotal]:
    """Daily or monthly totals read from the stored rollups (ingest.rollups)."""
    zone = local_zone()
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    if interval == "day":
        rows = DailyRollup.objects.filter(series=series, day__gte=first, day__lte=last)
        key = "day"
    else:
        rows = MonthlyRollup.objects.filter(
            series=series, month__gte=first.replace(day=1), month__lte=last
        )
        key = "month"
    out = []
    # Plain tuples, not model instances: a year of days is read on every daily request.
    values = rows.order_by(key).values_list(
        key, "value_sum", "readings", "covered_seconds", "cost_sum"
    )
    for day, value, readings, covered, cost in values:
        if interval == "day":
            following = day + timedelta(days=1)
        else:
            following = (day + timedelta(days=32)).replace(day=1)
        out.append(
            PeriodTotal(
                start=_local_midnight(day, zone),
                end=_local_midnight(following, zone),
                value=value,
                readings=readings,
                covered_seconds=covered,
                cost=cost,
            )
        )
    return out


def series_totals(
    *, series: MeterReading, interval: str, start: datetime, end: datetime
) -> list[PeriodTotal]:
    """Totals of one series for the `interval` periods that [start, end) overlaps: days and
    months from the stored rollups, hours from the readings."""
    if interval == "hour":
        return series_totals_from_readings(series=series, interval=interval, start=start, end=end)
    return series_totals_from_rollups(series=series, interval=interval, start=start, end=end)


def range_align(*, start: datetime, end: datetime, interval: str) -> tuple[datetime, datetime]:
    """[start, end) widened to whole periods: the first period's start to the last's end."""
    zone = local_zone()
    first = period_of(start, interval, zone)[0]
    last = period_of(end - timedelta(microseconds=1), interval, zone)[1]
    return first, last
