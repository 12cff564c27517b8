"""Helpers for the data-integrity tests: the stored readings and revisions as plain Python
values (keyed like the model: usage point, meter reading, UTC epoch start, duration), a
checksum, and a wipe of every reading table between model-based examples."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from django.db import connection

from ingest.models import (
    IntervalReading,
    MeterReading,
    ReadingRevision,
    ReadingType,
    UsagePoint,
    UsageSummary,
)

# (usage point id, meter reading id, start epoch s, duration s)
Key = tuple[str, str, int, int]
# (value, quality, cost)
Triple = tuple[int, int | None, int | None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch(moment: datetime) -> int:
    delta = moment - _EPOCH
    assert delta.microseconds == 0, moment
    return int(delta.total_seconds())


def stored_readings() -> dict[Key, Triple]:
    rows = IntervalReading.objects.values_list(
        "meter_reading__usage_point__usage_point_id",
        "meter_reading__meter_reading_id",
        "start",
        "duration",
        "value",
        "quality",
        "cost",
    )
    stored: dict[Key, Triple] = {}
    for up, mr, start, duration, value, quality, cost in rows:
        key = (up, mr, _epoch(start), duration)
        assert key not in stored, f"two rows for {key}"
        stored[key] = (value, quality, cost)
    return stored


def stored_revisions() -> list[tuple[Key, Triple, Triple]]:
    rows = ReadingRevision.objects.values_list(
        "meter_reading__usage_point__usage_point_id",
        "meter_reading__meter_reading_id",
        "start",
        "duration",
        "old_value",
        "old_quality",
        "old_cost",
        "new_value",
        "new_quality",
        "new_cost",
    )
    return sorted(
        (
            ((up, mr, _epoch(start), d), (ov, oq, oc), (nv, nq, nc))
            for up, mr, start, d, ov, oq, oc, nv, nq, nc in rows
        ),
        key=revision_order,
    )


def stored_revisions_with_stale() -> list[tuple[Key, Triple, Triple, bool]]:
    """Revisions with their `stale` flag (an older snapshot that arrived late)."""
    rows = ReadingRevision.objects.values_list(
        "meter_reading__usage_point__usage_point_id",
        "meter_reading__meter_reading_id",
        "start",
        "duration",
        "old_value",
        "old_quality",
        "old_cost",
        "new_value",
        "new_quality",
        "new_cost",
        "stale",
    )
    return sorted(
        (
            ((up, mr, _epoch(start), d), (ov, oq, oc), (nv, nq, nc), stale)
            for up, mr, start, d, ov, oq, oc, nv, nq, nc, stale in rows
        ),
        key=lambda r: (*revision_order(r[:3]), r[3]),
    )


def revision_order(revision: tuple[Key, Triple, Triple]) -> tuple[object, ...]:
    """A total order over revisions (None quality/cost sorts first)."""
    key, old, new = revision
    return (key, *(-1 if v is None else v for v in (*old, *new)))


def checksum(readings: dict[Key, Triple]) -> str:
    digest = hashlib.sha256()
    for key in sorted(readings):
        digest.update(repr((key, readings[key])).encode())
    return digest.hexdigest()


def readings_wipe() -> None:
    """Every reading table emptied (the model-based machine starts each example clean)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ingest_readingrevision")
        cursor.execute("DELETE FROM ingest_intervalreading")
    UsageSummary.objects.all().delete()
    MeterReading.objects.all().delete()
    ReadingType.objects.all().delete()
    UsagePoint.objects.all().delete()
