"""Streamed exports of one usage point's readings: CSV (the columns and values of
`manage.py export_readings`, ingest/readings_export.py) and ESPI XML (api/espi_export.py).

Rows are read in chunks and written in blocks of a few thousand lines, so memory stays flat
whatever the size of the export. The CSV loop works out each series' constant columns once
and formats values with integer arithmetic: it is the export's hot path (`make bench-api`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from django.db.models import QuerySet

from ingest.models import IntervalReading, MeterReading, UsagePoint
from ingest.readings_export import CSV_HEADER, readings_export_rows

ROWS_PER_CHUNK = 5000


def _query(
    *, point: UsagePoint, start: datetime | None, end: datetime | None
) -> QuerySet[IntervalReading]:
    query = IntervalReading.objects.filter(meter_reading__usage_point=point)
    if start is not None:
        query = query.filter(start__gte=start)
    if end is not None:
        query = query.filter(start__lt=end)
    return query


def _decimal_formatter(exponent: int) -> Callable[[int], str]:
    """value x 10^exponent as `format(Decimal(value).scaleb(exponent), "f")` writes it, in
    integer arithmetic (tests/api/test_exports.py compares the two)."""
    if exponent >= 0:
        scale = 10**exponent
        return lambda value: str(value * scale)
    places = -exponent
    unit = 10**places

    def text(value: int) -> str:
        whole, frac = divmod(abs(value), unit)
        return f"{'-' if value < 0 else ''}{whole}.{frac:0{places}d}"

    return text


def _iso_z(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _series_rows(
    *, point: UsagePoint, start: datetime | None, end: datetime | None
) -> Iterator[tuple[str, ...]]:
    """The rows `readings_export_rows(usage_point_pk=...)` yields, in its order (meter reading
    id, series, start), series by series."""
    series_list = sorted(
        MeterReading.objects.filter(usage_point=point).select_related("reading_type"),
        key=lambda s: (s.meter_reading_id, s.pk),
    )
    cost_text = _decimal_formatter(-5)
    for series in series_list:
        # The series' constant columns exactly as the operator's export writes them.
        first = next(
            readings_export_rows(usage_point_pk=point.pk, series_pk=series.pk, limit=1), None
        )
        if first is None:
            continue
        up_id, mr_id, commodity, unit, flow = first[:5]
        rt = series.reading_type
        value_text: Callable[[int], str] = (
            _decimal_formatter(rt.multiplier) if rt is not None else str
        )
        default_quality = rt.default_quality if rt is not None else None
        rows = (
            _query(point=point, start=start, end=end)
            .filter(meter_reading=series)
            .order_by("start", "duration")
            .values_list("start", "duration", "value", "quality", "cost")
        )
        for moment, duration, value, quality, cost in rows.iterator(chunk_size=ROWS_PER_CHUNK):
            if quality is None:
                quality = default_quality
            yield (
                up_id,
                mr_id,
                commodity,
                unit,
                flow,
                _iso_z(moment),
                str(duration),
                value_text(value),
                "" if quality is None else str(quality),
                "" if cost is None else cost_text(cost),
            )


def csv_stream(*, point: UsagePoint, start: datetime | None, end: datetime | None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for row in _series_rows(point=point, start=start, end=end):
        writer.writerow(row)
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def espi_stream(
    *, point: UsagePoint, start: datetime | None, end: datetime | None
) -> Iterator[str]:
    from api.espi_export import espi_document

    yield from espi_document(point=point, query=_query(point=point, start=start, end=end))
