"""docs/reliability.md test 45: one document is one transaction. A failure after half of its rows
(while they stream into the load table, or after the merge wrote everything) leaves nothing
of that document: no new reading, no update, no revision, no new usage point or series. A
retry then yields exactly the golden set (the same document imported without a fault).

Run on SQLite (executemany load, several merge statements) and on PostgreSQL (COPY, one CTE
statement): the rollback must hold for both paths."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection

from ingest import readings as readings_service
from ingest.models import MeterReading, UsagePoint
from ingest.readings import EspiRejected, document_import
from tests.integrity.conftest import (
    checksum,
    readings_wipe,
    stored_readings,
    stored_revisions,
)
from tests.integrity.espi_writer import Block, SeriesDef, day_bounds, day_starts, feed

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2025, 12, 1, tzinfo=UTC)
OLD = SeriesDef("UPINTEG05", "MRDEL60", 3600, 1)
NEW = SeriesDef("UPINTEG06", "MRDEL15", 900, 1)
DAYS = (date(2025, 11, 1), date(2025, 11, 2), date(2025, 11, 3))


class InjectedFault(RuntimeError):
    pass


def _blocks(series: SeriesDef, *, bump: int) -> list[Block]:
    blocks = []
    for day in DAYS:
        first, after = day_bounds(day)
        rows = [
            (s, series.interval, 1000 + (s // series.interval) % 7 + bump, 19, 4200)
            for s in day_starts(day, series.interval)
        ]
        blocks.append(Block(series, first, after - first, rows))
    return blocks


def _first_version() -> bytes:
    return feed(_blocks(OLD, bump=0))


def _second_version() -> bytes:
    """Corrections for every OLD reading (updates + revisions) and a new usage point."""
    return feed(_blocks(OLD, bump=1) + _blocks(NEW, bump=0))


def _golden() -> tuple[dict, list]:
    readings_wipe()
    document_import(source=_first_version(), source_label="v1", now=NOW)
    document_import(source=_second_version(), source_label="v2", now=NOW)
    golden = (stored_readings(), stored_revisions())
    readings_wipe()
    return golden


def _faulty_sink(monkeypatch, *, fail_after_rows: int | None = None, after_merge: bool = False):
    real = readings_service.reading_sink

    def sink_factory(conn):
        sink = real(conn)
        # PostgreSQL loads every row through `add_text` (the parser's batches and what the
        # overlapped merge kept as COPY text); SQLite through `add`.
        loader = "add_text" if conn.vendor == "postgresql" else "add"
        load, merge = getattr(sink, loader), sink.merge

        def load_then_maybe_fail(*args):
            load(*args)
            if fail_after_rows is not None and sink.rows_loaded >= fail_after_rows:
                raise InjectedFault(f"after {sink.rows_loaded} rows")

        def merge_then_fail(batch):
            counts = merge(batch)
            raise InjectedFault(f"after the merge wrote {counts}")

        setattr(sink, loader, load_then_maybe_fail)
        if after_merge:
            sink.merge = merge_then_fail
        return sink

    monkeypatch.setattr(readings_service, "reading_sink", sink_factory)


def _state() -> tuple[dict, list, int, int]:
    return (
        stored_readings(),
        stored_revisions(),
        UsagePoint.objects.count(),
        MeterReading.objects.count(),
    )


@pytest.mark.parametrize("where", ["half_of_the_rows_loaded", "after_the_merge"])
def test_a_failing_document_leaves_nothing_and_a_retry_gives_the_golden_set(monkeypatch, where):
    golden_readings, golden_revisions = _golden()
    total = len(golden_readings)
    assert total == 3 * 24 + 1 + 3 * 96 + 4  # 25-hour fall-back day in both series

    document_import(source=_first_version(), source_label="v1", now=NOW)
    before = _state()
    assert len(before[0]) == 73

    with monkeypatch.context() as patch:
        if where == "half_of_the_rows_loaded":
            _faulty_sink(patch, fail_after_rows=(73 + 292) // 2)
        else:
            _faulty_sink(patch, after_merge=True)
        with pytest.raises(InjectedFault):
            document_import(source=_second_version(), source_label="v2", now=NOW)
    assert connection.in_atomic_block is False
    assert _state() == before  # nothing of v2: no update, no revision, no new series

    result = document_import(source=_second_version(), source_label="v2 retry", now=NOW)
    assert (result.readings_new, result.readings_updated) == (292, 73)
    assert stored_readings() == golden_readings
    assert checksum(stored_readings()) == checksum(golden_readings)
    assert stored_revisions() == golden_revisions
    # No reading is attributed to another usage point: each kept its own series.
    assert {up for up, _mr, _s, _d in stored_readings()} == {"UPINTEG05", "UPINTEG06"}


def test_a_document_malformed_after_half_of_its_rows_stores_nothing():
    document_import(source=_first_version(), source_label="v1", now=NOW)
    before = _state()
    whole = _second_version()
    cut = whole[: len(whole) * 3 // 4]  # past OLD's corrections, inside NEW's blocks
    with pytest.raises(EspiRejected):
        document_import(source=cut, source_label="truncated", now=NOW)
    assert _state() == before
