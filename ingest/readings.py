"""The ESPI storage service: import one document (one transaction), attach a ReadingType
fetched later.

`document_import` is the one code path for readings: the notification pipeline calls it with
each fetched document and `manage.py import_espi` with files. It streams the document through
`gascap.pge.espi`, loads the readings into a temporary table as they are parsed, resolves the
entries' links once the document has ended, stores usage points, reading types, series and
summaries, and merges the readings (`ingest.readings_merge`). Any parse error rolls the whole
document back: nothing from a malformed or hostile document is stored.
"""

from __future__ import annotations

import gc
import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import IO, BinaryIO

from django.conf import settings
from django.db import connection, transaction

from gascap.pge.espi import EspiRejected, EspiStream
from gascap.pge.espi.records import BlockRef, ReadingTypeInfo
from ingest.events import import_events_emit
from ingest.models import (
    MeterReading,
    UsageSummary,
)
from ingest.readings_document import DocumentStore
from ingest.readings_merge import MergeBatch, MergeCounts, ReadingSink, reading_sink, series_lock
from ingest.readings_overlap import OverlappedMerge
from ingest.readings_resources import (
    reading_type_store,
    summary_store,
    summary_usage_point_href,
)
from ingest.rollups import rollups_after_import, rollups_refresh
from ingest.usage_point_binding import DocumentRefused, UsagePointBinding
from ops.metrics import readings_stored_record

__all__ = [
    "DocumentRefused",
    "EspiRejected",
    "ImportResult",
    "StoredUsagePoint",
    "document_import",
    "reading_type_attach",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredUsagePoint:
    """A usage point the import stored, with its authorization (None: unbound file)."""

    authorization_id: int | None
    usage_point_id: str
    service_kind: int | None  # ServiceCategory kind as stored (0 electricity, 1 gas, ...)


@dataclass(slots=True)
class ImportResult:
    """What one document changed. Counts are of distinct (series, start, duration) keys."""

    readings_new: int = 0
    readings_updated: int = 0
    readings_unchanged: int = 0
    # Keys whose stored value came from a newer snapshot than this document's (Atom
    # `updated`): not changed, the document's values kept as stale revisions.
    readings_stale: int = 0
    usage_points: int = 0
    # Bulk documents: usage points of subscriptions not ACTIVE here (not stored).
    usage_points_skipped: int = 0
    usage_points_stored: list[StoredUsagePoint] = field(default_factory=list)
    series: int = 0
    summaries: int = 0
    readings_skipped: int = 0
    # ReadingType hrefs the document lacked: fetch each, then call `reading_type_attach`.
    missing_reading_types: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        stale = f", {self.readings_stale} stale" if self.readings_stale else ""
        return (
            f"readings: {self.readings_new} new, {self.readings_updated} updated, "
            f"{self.readings_unchanged} unchanged{stale}; usage points: {self.usage_points}"
        )


@contextmanager
def _opened(source: BinaryIO | IO[bytes] | str | bytes) -> Iterator[IO[bytes]]:
    """A path is opened (and closed), bytes wrapped, a file object used as it is."""
    if isinstance(source, str):
        with open(source, "rb") as handle:
            yield handle
    elif isinstance(source, bytes | bytearray):
        yield io.BytesIO(source)
    else:
        yield source


# --- small resources ----------------------------------------------------------------------


def _unique_rows(blocks: list[BlockRef], block_series: dict[int, int]) -> int | None:
    """The number of readings to merge when no (series, start, duration) key can repeat in
    the document, else None (the merge then de-duplicates, last copy winning).

    Keys are unique when every block's starts came strictly increasing and the blocks of
    each series do not overlap in time: the common PG&E shape (one block per day).
    """
    spans: dict[int, list[tuple[object, object]]] = {}
    rows = 0
    for block in blocks:
        series = block_series.get(block.number)
        if series is None or not block.readings:
            continue
        if not block.ordered:
            return None
        spans.setdefault(series, []).append((block.first_start, block.last_start))
        rows += block.readings
    for ranges in spans.values():
        ranges.sort()
        for (_first, last), (following, _end) in pairwise(ranges):
            if following <= last:  # type: ignore[operator]
                return None
    return rows


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a document is parsed, back as it was after.

    The parse allocates about ten container objects per reading (element proxies, row
    tuples), none of them in a cycle, so the collector's passes over them (one per 700
    allocations) find nothing; they cost 0.08-0.12 s of a 2.3-2.4 s import of 350,400
    readings (`make bench SIZE=medium`, with and without). Reference counting still frees
    everything as it goes; a cycle made meanwhile waits for the next collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_start(sink: ReadingSink, overlap: OverlappedMerge | None) -> None:
    """Open the ordinary load, with what the overlapped merge did not merge (it is stopped
    first: the connection is then this thread's alone)."""
    left = overlap.finish() if overlap is not None else []
    sink.open()
    for _block, text, count in left:
        sink.add_text(text, count)


# --- the service --------------------------------------------------------------------------


def document_import(
    *,
    source: BinaryIO | IO[bytes] | str | bytes,
    source_label: str,
    now: datetime,
    binding: UsagePointBinding | None = None,
) -> ImportResult:
    """Import one ESPI document (a file object, a path or bytes) in one transaction.

    `binding` (from the fetch: `ingest.usage_point_binding`) decides which usage points the
    document may write and to which authorization they belong; None (an operator's file)
    stores every usage point unbound.

    Raises `EspiRejected` (line/column, reason) for malformed or hostile input and
    `DocumentRefused` for a document writing outside its binding; nothing from that
    document is stored then.
    """
    result = ImportResult()
    started = time.perf_counter()
    with _opened(source) as handle, transaction.atomic():
        stream = EspiStream(handle)
        doc = stream.document
        store = DocumentStore(doc, binding=binding, now=now)
        sink = reading_sink(connection)
        # PostgreSQL: chunks merged while the rest is parsed (ingest.readings_overlap).
        overlap = None
        if connection.vendor == "postgresql" and int(settings.GASCAP_INGEST_CHUNK_ROWS) > 0:
            overlap = OverlappedMerge(
                connection=connection, store=store, source_label=source_label, now=now
            )
        loading = False
        try:
            with _collector_paused():
                for block, rows in stream.batches():
                    if overlap is not None and overlap.accepting:
                        overlap.add(block, rows)
                        if not overlap.accepting:  # this batch is among what it left
                            loading = True
                            _load_start(sink, overlap)
                        continue
                    if not loading:
                        loading = True
                        _load_start(sink, overlap)
                    sink.add(block.number, rows)
            if not loading:
                _load_start(sink, overlap)
        except BaseException:
            if overlap is not None:
                overlap.abort()
            sink.abort()
            raise
        sink.close_load()
        parsed = time.perf_counter()
        series_by_block = stream.document_series()

        # The usage points the document writes (its own, its series', its summaries'), each
        # with the authorization the binding gives it, then stored at once with the series
        # (those of chunks merged during the parse are stored already).
        summaries = [(s, summary_usage_point_href(s, doc)) for s in doc.usage_summaries]
        store.bind_all([*doc.usage_points, *(up_href for _summary, up_href in summaries)])
        block_series = store.series_for(series_by_block, final=True)
        usage_points = store.usage_points
        new_bills: list[UsageSummary] = []
        for summary, up_href in summaries:
            owner = usage_points.get(up_href) if up_href else None
            if owner is not None:
                stored_bill, created = summary_store(
                    summary, owner, source_label=source_label, now=now
                )
                if created:
                    new_bills.append(stored_bill)
                result.summaries += 1

        resolved = time.perf_counter()
        merged_early = overlap.block_series if overlap is not None else {}
        rest = {b: s for b, s in block_series.items() if b not in merged_early}
        early_series = overlap.merged_series if overlap is not None else set()
        rest_counts = sink.merge(
            MergeBatch(
                block_series=rest,
                block_updated={b.number: b.updated for b in doc.blocks if b.number in rest},
                source_label=source_label,
                now=now,
                # A series a chunk has written to is no longer empty.
                fresh_series=frozenset(store.fresh - early_series),
                unique_rows=_unique_rows(doc.blocks, rest),
            )
        )
        # Same transaction: the daily/monthly totals never disagree with the readings. A
        # replay that changed no reading writes no rollup either. Chunks merged during the
        # parse refreshed their own days; a day they share with the rest is refreshed again
        # here, from every stored reading.
        if rest_counts.new or rest_counts.updated:
            rollups_after_import(block_series=rest, blocks=doc.blocks)
        counts = rest_counts
        if overlap is not None:
            counts = MergeCounts(
                new=counts.new + overlap.counts.new,
                updated=counts.updated + overlap.counts.updated,
                unchanged=counts.unchanged + overlap.counts.unchanged,
                stale=counts.stale + overlap.counts.stale,
            )
        # The app's webhooks (data.available, bill.available): outbox rows, same transaction.
        import_events_emit(
            block_series=block_series, blocks=doc.blocks, counts=counts, bills=new_bills, now=now
        )
        result.readings_new = counts.new
        result.readings_updated = counts.updated
        result.readings_unchanged = counts.unchanged
        result.readings_stale = counts.stale
        result.usage_points = len(usage_points)
        result.usage_points_skipped = len(store.skipped)
        result.usage_points_stored = [
            StoredUsagePoint(row.authorization_id, row.usage_point_id, row.service_kind)
            for row in usage_points.values()
        ]
        result.series = len(store.series)
        # Readings without start/duration/value, and those of blocks that no link ties to a
        # MeterReading (a bare IntervalBlock with no entry around it): not stored, counted.
        result.readings_skipped = doc.readings_skipped + sum(
            b.readings for b in doc.blocks if b.number not in block_series
        )
        result.missing_reading_types = list(store.missing_reading_types)
    finished = time.perf_counter()
    logger.info(
        "ESPI document %s imported: %s (parse+load %.2f s, links %.2f s, merge %.2f s)",
        source_label,
        result.summary_line(),
        parsed - started,
        resolved - parsed,
        finished - resolved,
    )
    readings_stored_record(new=result.readings_new, updated=result.readings_updated)
    return result


def reading_type_attach(*, href: str, source: BinaryIO | IO[bytes] | str, now: datetime) -> int:
    """Store a ReadingType fetched after the readings, and give its series their units.

    `source` is the fetched ReadingType entry (or a feed holding it). Returns the number of
    series that now have known units. A series whose known-units twin already exists (same
    usage point, MeterReading and ReadingType) has its readings merged into the twin.
    """
    with _opened(source) as handle:
        stream = EspiStream(handle)
        for _ in stream.batches():
            pass
    doc = stream.document
    info = doc.reading_types.get(href)
    if info is None and len(doc.reading_types) == 1:
        only = next(iter(doc.reading_types.values()))
        info = ReadingTypeInfo(href=href, codes=only.codes)
    if info is None:
        raise EspiRejected("not_reading_type", f"No ReadingType in the document for {href!r}")
    info = ReadingTypeInfo(href=href, codes=info.codes)
    resolved = 0
    with transaction.atomic():
        reading_type = reading_type_store(info, now=now)
        pending = MeterReading.objects.select_for_update().filter(
            reading_type__isnull=True, reading_type_href=href[:500]
        )
        for series in pending:
            twin = MeterReading.objects.filter(
                usage_point_id=series.usage_point_id, href=series.href, reading_type=reading_type
            ).first()
            if twin is None:
                series.reading_type = reading_type
                series.save(update_fields=["reading_type"])
            else:
                _series_merge_into(series, twin)
                rollups_refresh(spans={twin.pk: None})
            resolved += 1
    return resolved


def _series_merge_into(source: MeterReading, target: MeterReading) -> None:
    """Move a units-unknown series' readings into its known-units twin (twin's rows win)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            series_lock(cursor, [source.pk, target.pk])
        cursor.execute(
            "INSERT INTO ingest_intervalreading (meter_reading_id, start, duration, value, cost,"
            " quality, tou, cpp, consumption_tier, source_updated)"
            " SELECT %s, start, duration, value, cost, quality, tou, cpp, consumption_tier,"
            " source_updated"
            " FROM ingest_intervalreading WHERE meter_reading_id = %s"
            " ON CONFLICT (meter_reading_id, start, duration) DO NOTHING",
            [target.pk, source.pk],
        )
        cursor.execute(
            "UPDATE ingest_readingrevision SET meter_reading_id = %s WHERE meter_reading_id = %s",
            [target.pk, source.pk],
        )
    source.delete()
