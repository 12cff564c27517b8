"""The readings endpoint's page: readings of a usage point in [start, end), ordered by
(start, series, duration), a page at a time.

A page holds at most `limit` readings and covers at most `GASCAP_API_READINGS_MAX_PAGE_DAYS`
from where it starts; `next_cursor` (opaque, base64 of the last position) continues after it
and is None on the last page. The position is the primary key's order, so a page is one
range scan per series and a reading is never skipped or repeated between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q

from api.selectors import COST_EXPONENT, decimal_text, quality_words, series_describe
from ingest.models import IntervalReading, MeterReading


class CursorInvalid(ValueError):
    """A cursor this server did not make (or for another query)."""


@dataclass(frozen=True)
class Position:
    """Readings strictly after (start, series, duration) come next."""

    start: datetime
    series: int
    duration: int

    def encode(self) -> str:
        raw = json.dumps([self.start.timestamp(), self.series, self.duration]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            stamp, series, duration = json.loads(raw)
            return cls(datetime.fromtimestamp(float(stamp), tz=UTC), int(series), int(duration))
        except (ValueError, TypeError, binascii.Error, OverflowError) as exc:
            raise CursorInvalid("cursor is not valid") from exc


def readings_page(
    *,
    series: list[MeterReading],
    start: datetime,
    end: datetime,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    position = Position.decode(cursor) if cursor else Position(start, -1, -1)
    if position.start < start or position.start > end:
        raise CursorInvalid("cursor is outside the requested range")
    window_end = min(
        end, position.start + timedelta(days=settings.GASCAP_API_READINGS_MAX_PAGE_DAYS)
    )
    described = {row.pk: (row, series_describe(row)) for row in series}
    after = (
        Q(start__gt=position.start)
        | Q(start=position.start, meter_reading_id__gt=position.series)
        | Q(start=position.start, meter_reading_id=position.series, duration__gt=position.duration)
    )
    rows = list(
        IntervalReading.objects.filter(
            after,
            meter_reading_id__in=list(described),
            start__gte=start,
            start__lt=window_end,
        )
        .order_by("start", "meter_reading_id", "duration")
        .values_list("meter_reading_id", "start", "duration", "value", "quality", "cost")[
            : limit + 1
        ]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    data = []
    for series_id, moment, duration, value, quality, cost in rows:
        row, info = described[series_id]
        rt = row.reading_type
        if quality is None and rt is not None:
            quality = rt.default_quality
        data.append(
            {
                "series": series_id,
                "flow": info["flow"],
                "start": moment,
                "duration": duration,
                "value": decimal_text(value, info["value_exponent"]) if rt is not None else None,
                "unit": info["unit"],
                "raw_value": value,
                "multiplier": rt.power_of_ten_multiplier if rt is not None else None,
                "raw_unit": rt.uom if rt is not None else None,
                "raw_unit_label": info["raw_unit"],
                "quality": quality_words(quality),
                "cost": decimal_text(cost, COST_EXPONENT),
            }
        )
    if more:
        last = rows[-1]
        next_position: Position | None = Position(last[1], last[0], last[2])
    elif window_end < end:
        next_position = Position(window_end, -1, -1)
    else:
        next_position = None
    return {
        "start": start,
        "end": end,
        "page_end": rows[-1][1] if more else window_end,
        "next_cursor": next_position.encode() if next_position else None,
        "readings": data,
    }
