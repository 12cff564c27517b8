"""Streamed exports of one usage point's readings: CSV (the columns of
`manage.py export_readings`, ingest/readings_export.py) and ESPI XML (api/espi_export.py).

Rows are read in chunks with a server-side cursor and written in blocks of a few thousand
lines, so memory stays flat whatever the size of the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from ingest.models import IntervalReading, UsagePoint
from ingest.readings_export import CSV_HEADER, readings_export_rows

ROWS_PER_CHUNK = 5000


def _query(*, point: UsagePoint, start: datetime | None, end: datetime | None):
    query = IntervalReading.objects.filter(meter_reading__usage_point=point)
    if start is not None:
        query = query.filter(start__gte=start)
    if end is not None:
        query = query.filter(start__lt=end)
    return query


def csv_stream(*, point: UsagePoint, start: datetime | None, end: datetime | None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for row in readings_export_rows(usage_point_pk=point.pk, start=start, end=end):
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
