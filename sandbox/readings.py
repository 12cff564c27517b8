"""Deterministic, realistic interval data for the demo customers.

Values come from an RNG seeded by (customer, series, local day), so the same day always has
the same readings whatever else was asked (same request -> same bytes). Days are Pacific
local days (PG&E's blocks are one local day, 23 or 25 hours on DST days: docs/espi-model.md §5).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sandbox.demo import FLOW_RECEIVED, UOM_THERM, DemoCustomer, SeriesSpec, UsagePointSpec

PACIFIC = ZoneInfo("America/Los_Angeles")
# PG&E marks recent data 17 (validated) and re-delivers it later as 19 (revenue quality),
# sometimes with corrected values (docs/espi-model.md §4.8). Days older than this are "final".
QUALITY_VALIDATED = 17
QUALITY_REVENUE = 19
DAYS_UNTIL_REVENUE_QUALITY = 3
# PG&E gas days start one second after local midnight (pge_smd_2020_gas_daily_therm_bulk.xml).
GAS_DAY_OFFSET = 1
# How many readings per series and day get a corrected value once revenue quality.
CORRECTIONS_PER_DAY = 2


@dataclass(frozen=True)
class Reading:
    start: int
    duration: int
    value: int
    quality: int
    tou: int | None


@dataclass(frozen=True)
class Block:
    start: int
    duration: int
    readings: tuple[Reading, ...]


def local_midnight(day: date) -> int:
    return int(datetime.combine(day, time(0), tzinfo=PACIFIC).timestamp())


def day_bounds(day: date) -> tuple[int, int]:
    """UTC epoch seconds of the local day's start and end (23, 24 or 25 hours apart)."""
    return local_midnight(day), local_midnight(day + timedelta(days=1))


def local_date(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, tz=PACIFIC).date()


def dst_transition(day: date) -> int | None:
    """The instant the UTC offset changes during this local day, or None."""
    start, end = day_bounds(day)
    if end - start == 86400:
        return None
    offset = datetime.fromtimestamp(start, tz=PACIFIC).utcoffset()
    for instant in range(start, end, 3600):
        if datetime.fromtimestamp(instant, tz=PACIFIC).utcoffset() != offset:
            return instant
    return None


def _tou(epoch: int) -> int:
    """PG&E tou codes (docs/espi-model.md §2.1): peak 16-21 h; summer June-September."""
    local = datetime.fromtimestamp(epoch, tz=PACIFIC)
    summer = 6 <= local.month <= 9
    peak = 16 <= local.hour < 21
    if summer:
        return 1 if peak else 2
    return 4 if peak else 6


def _hourly_kwh(rng: random.Random, local: datetime, *, solar_site: bool) -> float:
    """Household consumption with a daily shape: night base, morning and evening peaks."""
    hour = local.hour + local.minute / 60
    base = 0.35 + 0.1 * rng.random()
    morning = 0.6 * math.exp(-((hour - 7.5) ** 2) / 2.0)
    evening = 1.3 * math.exp(-((hour - 19.0) ** 2) / 4.0)
    if local.month in (6, 7, 8, 9):
        evening += 0.8 * math.exp(-((hour - 16.0) ** 2) / 6.0)  # air conditioning
    usage = base + morning + evening + 0.15 * rng.random()
    if solar_site:
        # Behind-the-meter solar covers part of the daytime load before it reaches the meter.
        usage -= min(usage - 0.05, _solar_kwh(rng, local) * 0.5)
    return max(usage, 0.02)


def _solar_kwh(rng: random.Random, local: datetime) -> float:
    hour = local.hour + local.minute / 60
    day_of_year = local.timetuple().tm_yday
    # Longer, stronger days in summer; a bell curve around solar noon (~13:00 local).
    season = 0.65 + 0.35 * math.cos(2 * math.pi * (day_of_year - 172) / 365)
    width = 2.2 + 1.0 * season
    clouds = 0.75 + 0.25 * rng.random()
    return max(0.0, 3.2 * season * clouds * math.exp(-((hour - 13.0) ** 2) / (2 * width**2)))


def _interval_value(
    rng: random.Random, series: SeriesSpec, start: int, duration: int, *, solar_site: bool
) -> int:
    local = datetime.fromtimestamp(start, tz=PACIFIC)
    if series.uom == UOM_THERM:
        # Daily therms: more in winter (heating), a little every day (water heating, cooking).
        day_of_year = local.timetuple().tm_yday
        winter = 0.5 + 0.5 * math.cos(2 * math.pi * (day_of_year - 15) / 365)
        therms = 0.4 + 2.6 * winter + 0.5 * rng.random()
        return round(therms * duration / 86400 / 10**series.multiplier)
    if series.flow_direction == FLOW_RECEIVED:
        kwh = _solar_kwh(rng, local)
    else:
        kwh = _hourly_kwh(rng, local, solar_site=solar_site)
    wh = kwh * 1000 * duration / 3600
    # Whole Wh like PG&E's meters, scaled by the ReadingType's multiplier (-3: 1109 Wh = 1109000).
    return round(wh) * 10 ** (-series.multiplier)


def _reading_starts(series: SeriesSpec, day: date) -> list[tuple[int, int]]:
    start, end = day_bounds(day)
    if series.interval >= 86400:
        return [(start + GAS_DAY_OFFSET, end - start)]
    return [(t, series.interval) for t in range(start, end, series.interval)]


def day_readings(
    customer: DemoCustomer,
    usage_point: UsagePointSpec,
    series: SeriesSpec,
    day: date,
    *,
    today: date,
) -> list[Reading]:
    """One local day of one series, as delivered on `today` (quality and corrections)."""
    rng = random.Random(f"{customer.seed}:{usage_point.usage_point_id}:{series.key}:{day}")
    solar_site = any(s.flow_direction == FLOW_RECEIVED for s in usage_point.series)
    starts = _reading_starts(series, day)
    values = [
        _interval_value(rng, series, start, duration, solar_site=solar_site)
        for start, duration in starts
    ]
    final = (today - day).days > DAYS_UNTIL_REVENUE_QUALITY
    quality = QUALITY_REVENUE if final else QUALITY_VALIDATED
    if final:
        # A few values are corrected on the revenue-quality re-delivery.
        correction_rng = random.Random(f"{customer.seed}:{series.key}:{day}:corrections")
        for index in correction_rng.sample(
            range(len(values)), min(CORRECTIONS_PER_DAY, len(values))
        ):
            factor = 1 + correction_rng.choice((-1, 1)) * correction_rng.randint(2, 9) / 100
            # Electric values stay whole Wh; gas keeps its fine -8 resolution.
            unit = 10 ** (-series.multiplier) if series.uom != UOM_THERM else 1
            corrected = round(values[index] * factor / unit) * unit
            values[index] = corrected if corrected != values[index] else values[index] + unit
    electric = series.uom != UOM_THERM
    return [
        Reading(start, duration, value, quality, _tou(start) if electric else None)
        for (start, duration), value in zip(starts, values, strict=True)
    ]


def day_blocks(
    customer: DemoCustomer,
    usage_point: UsagePointSpec,
    series: SeriesSpec,
    day: date,
    *,
    today: date,
) -> list[Block]:
    """The IntervalBlocks of one local day: one block, or two split at the DST transition."""
    readings = day_readings(customer, usage_point, series, day, today=today)
    start, end = day_bounds(day)
    transition = dst_transition(day) if usage_point.split_dst_days else None
    if transition is None or series.interval >= 86400:
        return [Block(readings[0].start, end - start, tuple(readings))]
    first = tuple(r for r in readings if r.start < transition)
    second = tuple(r for r in readings if r.start >= transition)
    return [Block(start, transition - start, first), Block(transition, end - transition, second)]


def days_in_range(
    published_min: int | None,
    published_max: int | None,
    *,
    today: date,
    default_days: int,
    history_days: int = 730,
) -> list[date]:
    """Local days overlapping [published_min, published_max), completed before `today`.

    PG&E publishes a day's data the next day, so `today` itself is never included. Without
    bounds the last `default_days` days are returned.
    """
    last = today - timedelta(days=1)
    earliest = today - timedelta(days=history_days)
    if published_min is None and published_max is None:
        return [last - timedelta(days=n) for n in reversed(range(default_days))]
    first = local_date(published_min) if published_min is not None else earliest
    if published_max is not None:
        end_day = local_date(published_max - 1)
        last = min(last, end_day)
    first = max(first, earliest)
    days = []
    day = first
    while day <= last:
        start, end = day_bounds(day)
        if (published_min is None or end > published_min) and (
            published_max is None or start < published_max
        ):
            days.append(day)
        day += timedelta(days=1)
    return days
