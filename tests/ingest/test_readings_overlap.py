"""The overlapped merge (PostgreSQL, issue 15): chunks of a document's new series merged
while the rest is parsed store exactly what the merge after the parse stores — every
reading once, the same counts, an unchanged re-import writing no row, corrections with
their revisions, older snapshots kept as stale revisions — and a document failing after
some chunks were merged stores nothing. The documents are the sandbox's scale-mode Bulk
feeds (sandbox/scale.py); a small `GASCAP_INGEST_CHUNK_ROWS` makes a few hundred readings
several chunks."""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.db.models import Count, Sum

from gascap.pge.espi import EspiRejected
from ingest import readings_merge, readings_overlap
from ingest.models import (
    DailyRollup,
    IntervalReading,
    MeterReading,
    MonthlyRollup,
    ReadingRevision,
    UsagePoint,
)
from ingest.readings import document_import
from sandbox import scale
from tests.builders import scale_bulk_document_make

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
DAYS = [date(2026, 3, 2), date(2026, 3, 3)]
CUSTOMERS = 12  # 18 usage points, 36 blocks: ~2,000 readings


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


@pytest.fixture
def chunks(settings, monkeypatch):
    """Small chunks, and a record of how many blocks each import merged in chunks."""
    settings.GASCAP_INGEST_CHUNK_ROWS = 200
    merged: list[int] = []
    finish = readings_overlap.OverlappedMerge.finish

    def recording(self):  # type: ignore[no-untyped-def]
        left = finish(self)
        merged.append(len(self.block_series))
        return left

    monkeypatch.setattr(readings_overlap.OverlappedMerge, "finish", recording)
    return merged


def bulk_document(*, customers: int = CUSTOMERS, values: bytes = b"") -> bytes:
    data = scale_bulk_document_make(first=0, end=customers, days=DAYS, today=TODAY)
    return data.replace(b"<ns0:value>", b"<ns0:value>" + values) if values else data


def do_import(data: bytes, *, label: str = "test", now: datetime = NOW):
    return document_import(source=io.BytesIO(data), source_label=label, now=now)


def snapshot() -> tuple[object, ...]:
    totals = IntervalReading.objects.aggregate(n=Count("pk"), values=Sum("value"))
    return (
        totals["n"],
        totals["values"],
        UsagePoint.objects.count(),
        MeterReading.objects.count(),
        ReadingRevision.objects.count(),
    )


def expected_readings() -> tuple[int, int]:
    count, value_sum, _starts = scale.scale_expected(count=CUSTOMERS, days=DAYS, today=TODAY)
    return count, value_sum


def writes() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
            " FROM pg_stat_xact_user_tables WHERE relname LIKE 'ingest\\_%%'"
        )
        return int(cursor.fetchone()[0])


def test_chunks_store_every_reading_once_and_a_replay_writes_nothing(chunks):
    count, value_sum = expected_readings()
    first = do_import(bulk_document())
    assert chunks[-1] > 0, "no chunk was merged during the parse"
    assert (first.readings_new, first.readings_updated, first.readings_unchanged) == (
        count,
        0,
        0,
    )
    assert snapshot()[:2] == (count, value_sum)
    assert first.usage_points == UsagePoint.objects.count() == CUSTOMERS * 3 // 2

    before = writes()
    again = do_import(bulk_document(), label="replay")
    # Series that hold readings are compared chunk by chunk too, and still write nothing.
    assert chunks[-1] > 0
    assert (again.readings_new, again.readings_updated, again.readings_unchanged) == (0, 0, count)
    assert writes() == before
    assert snapshot()[:2] == (count, value_sum)


def test_chunks_and_the_whole_document_give_the_same_result(chunks, settings):
    """The same three deliveries (first, correction, older snapshot) merged in chunks and
    after the parse leave the same readings, revisions and counts."""
    corrected = bulk_document(values=b"1")
    results = {}
    for chunk_rows in (200, 0):
        settings.GASCAP_INGEST_CHUNK_ROWS = chunk_rows
        IntervalReading.objects.all().delete()
        ReadingRevision.objects.all().delete()
        runs = [
            do_import(bulk_document(), label="first", now=NOW),
            do_import(corrected, label="correction", now=NOW),
        ]
        # The first delivery again, its Atom `updated` older than the correction's: stale.
        stale = bulk_document().replace(b"T08:00:0", b"T06:00:0")
        runs.append(do_import(stale, label="older", now=NOW))
        results[chunk_rows] = (
            [
                (r.readings_new, r.readings_updated, r.readings_unchanged, r.readings_stale)
                for r in runs
            ],
            snapshot(),
            sorted(
                ReadingRevision.objects.values_list(
                    "meter_reading_id", "start", "old_value", "new_value", "stale", "source_label"
                )
            ),
            # Chunks refresh their own days' totals; the result is the whole document's.
            sorted(DailyRollup.objects.values_list("series_id", "day", "value_sum", "readings")),
            sorted(MonthlyRollup.objects.values_list("series_id", "month", "value_sum")),
        )
    assert chunks[0] > 0
    assert results[200] == results[0]
    assert results[0][3], "no daily totals were stored"
    count, _ = expected_readings()
    assert results[0][0][1][1] == count  # the correction changed every reading
    assert results[0][0][2][3] == count  # the older snapshot changed none, kept as stale


def test_a_document_failing_after_merged_chunks_stores_nothing(chunks):
    data = bulk_document()
    broken = data[: len(data) - 2000] + b"<ns0:value>x</ns0:value></ns1:feed>"
    with pytest.raises(EspiRejected):
        do_import(broken)
    assert snapshot() == (0, None, 0, 0, 0)


def test_blocks_before_their_meter_reading_wait_for_the_end(chunks):
    """Entries in any order (docs/espi-model.md §3): blocks whose MeterReading entry comes
    later cannot go early; the document still stores every reading once."""
    data = bulk_document()
    head, _, body = data.partition(b"<ns1:entry")
    entries = [b"<ns1:entry" + e for e in body.split(b"<ns1:entry")]
    tail_at = entries[-1].index(b"</ns1:feed>")
    entries[-1], closing = entries[-1][:tail_at], entries[-1][tail_at:]
    blocks = [e for e in entries if b"IntervalBlock>" in e]
    others = [e for e in entries if b"IntervalBlock>" not in e]
    reordered = head + b"".join(blocks + others) + closing
    result = do_import(reordered)
    count, value_sum = expected_readings()
    assert chunks[-1] == 0
    assert result.readings_new == count
    assert snapshot()[:2] == (count, value_sum)


def test_a_chunk_failing_on_the_writer_thread_fails_the_document_and_stores_nothing(
    chunks, monkeypatch
):
    """An error in the writer's merge reaches the import (at the next hand-off or at the
    end) and rolls back every chunk merged before it."""
    merge = readings_merge.PostgresSink.merge
    calls: list[int] = []

    def failing_second(self, batch):  # type: ignore[no-untyped-def]
        calls.append(len(batch.block_series))
        if len(calls) == 2:
            raise RuntimeError("injected: the second chunk's merge failed")
        return merge(self, batch)

    monkeypatch.setattr(readings_merge.PostgresSink, "merge", failing_second)
    with pytest.raises(RuntimeError, match="second chunk"):
        do_import(bulk_document())
    assert len(calls) == 2
    assert snapshot() == (0, None, 0, 0, 0)
    assert DailyRollup.objects.count() == 0


def test_a_database_error_on_the_writer_thread_is_djangos_so_the_fetch_retries_it(
    chunks, monkeypatch
):
    """The writer runs SQL on psycopg's own cursor; its errors reach the import as Django's
    (`ingest.fetches` retries a `django.db.DatabaseError`, such as a deadlock, and fails
    anything else)."""
    merge = readings_merge.PostgresSink.merge
    calls: list[int] = []

    def failing_second(self, batch):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            self._raw.execute("SELECT 1 / 0")  # psycopg's DivisionByZero
        return merge(self, batch)

    monkeypatch.setattr(readings_merge.PostgresSink, "merge", failing_second)
    with pytest.raises(DatabaseError) as raised:
        do_import(bulk_document())
    assert isinstance(raised.value.__cause__, psycopg.Error)
    assert snapshot() == (0, None, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_documents_merged_in_chunks_at_once_store_each_reading_once(chunks):
    """Two Bulk documents sharing six customers, imported at the same moment on two
    connections, both in chunks (docs/reliability.md test 46 with the overlapped merge). Their
    shared rows (reading types, usage points, series) are created chunk by chunk in each
    document's order, so PostgreSQL may find a deadlock between them and roll one import back:
    that surfaces as Django's DatabaseError, which the fetch retries. Each reading is stored
    once, the later import's shared series compared with what the first stored."""
    documents = [
        scale_bulk_document_make(first=0, end=CUSTOMERS, days=DAYS, today=TODAY),
        scale_bulk_document_make(first=6, end=6 + CUSTOMERS, days=DAYS, today=TODAY),
    ]
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []
    retried: list[DatabaseError] = []
    results: list[object] = []

    def importer(data: bytes) -> None:
        try:
            barrier.wait()
            for attempt in range(3):
                try:
                    results.append(do_import(data))
                    return
                except DatabaseError as exc:
                    # What the fetch does (ingest.fetches: row_retry): a deadlock between
                    # the two imports' shared rows rolls one back, and it runs again.
                    retried.append(exc)
                    if attempt == 2:
                        raise
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=importer, args=(data,)) for data in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert len(results) == 2
    assert all("deadlock" in str(exc) for exc in retried), retried
    assert len(chunks) >= 2 and min(chunks) > 0, "both imports merged chunks during the parse"
    count, value_sum = scale.scale_expected(count=6 + CUSTOMERS, days=DAYS, today=TODAY)[:2]
    assert snapshot()[:2] == (count, value_sum)
    per_document, _ = scale.scale_expected(count=CUSTOMERS, days=DAYS, today=TODAY)[:2]
    # A shared customer's readings came twice: new in one import, unchanged in the other.
    new = sum(r.readings_new for r in results)  # type: ignore[attr-defined]
    unchanged = sum(r.readings_unchanged for r in results)  # type: ignore[attr-defined]
    assert new == count
    assert new + unchanged == 2 * per_document
