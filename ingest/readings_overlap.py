"""Merging a document's readings chunk by chunk while the rest of it is parsed (PostgreSQL).

A document's readings are parsed in Python on one core; their merge runs in PostgreSQL, on
the other. One after the other, a 3.5 M-reading document spent 26 s parsing and then 10 s
merging (docs/scale.md). Here the load and merge of chunk k run while chunk k+1 is parsed:

- The parser's batches are kept as COPY text (`copy_text`, formatted on the parser's thread
  as each batch comes: a fifth of the memory of the row tuples). At an entry's end, when
  `GASCAP_INGEST_CHUNK_ROWS` readings are kept, the blocks whose series no later entry can
  change (`stable_series`: their MeterReading, its usage point and its ReadingType already
  read, matched exactly) are handed off: their usage points and series are stored on this
  thread (the ORM: Django's connection wrapper is this thread's), then a writer thread
  COPYs the text, merges it with the same statement as a whole document's (`PostgresSink`)
  and refreshes the chunk's days and months (`ingest.rollups`), on the same
  connection, in the same transaction, while this thread parses on. The writer's part is
  waiting on PostgreSQL (the GIL released), so the parse barely slows.
- One chunk at a time: before the next hand-off (and before any statement of its own) this
  thread waits for the writer. Memory holds one chunk being merged and one being parsed.
- Series this import created take their rows without comparison; series that held readings
  are compared with the stored ones (an unchanged re-import writes nothing, chunk by chunk
  too). Each chunk's comparison reads only its own series' stored readings in its months
  (`ingest.readings_merge`). An earlier version that compared chunk by chunk took 231 s
  for the unchanged re-import of the full bench file; this one takes 20 s (docs/scale.md).
- Whatever is left at the end (the last chunk, blocks whose links never became exact, and
  everything after a chunk that could not be handed off in time) goes through the ordinary
  path of `ingest.readings.document_import`. A parse error, a refused usage point or a
  failed merge rolls the whole document back, chunks included: one transaction.
- Series locks are taken chunk by chunk; a chunk is handed off only when its new series ids
  are all above those already locked (ids are assigned in document order, so the common
  shapes always are), which keeps every import taking its locks in ascending order (no
  deadlock, docs/reliability.md test 46). Otherwise the overlap stops and the rest is merged
  at the end as before.
- Each chunk keeps the merge's rules (unchanged rows not written; stale snapshots kept as
  revisions). A block goes early only when its starts are increasing and after every start
  of its series merged before: no key can repeat across chunks, and a document's repeated
  keys (PG&E repeats blocks and days) still collapse in one merge, last copy winning — the
  first block that could repeat one ends the overlap, and it and the rest merge at the end.
  (A document that repeats a key of a chunk already merged in a later block stores it as
  two deliveries would: the later copy updates the first, with its revision.)

SQLite keeps the simple path: one writer, no second core to gain from (ingest.readings).
On by default on PostgreSQL (`GASCAP_INGEST_CHUNK_ROWS=65536`; 0 turns it off): `make bench`
on the 2-core host, 100 customer-years, imports at 0.93x the parse floor against 0.68-0.70x
merged after the parse, an unchanged re-import at 0.99x against 0.79-0.87x (docs/scale.md
§1.4).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from gascap.pge.espi.records import BlockRef, EspiDocument, ReadingRow, Series
from ingest.partitions import MAX_DOCUMENT_MONTHS, month_of, months_between, months_ensure
from ingest.readings_document import DocumentStore
from ingest.readings_merge import MergeBatch, MergeCounts, PostgresSink, copy_text
from ingest.rollups import rollups_after_import

# A parser batch as the overlapped merge keeps it: its block, its rows as COPY text
# (`copy_text`), how many readings.
Buffered = tuple[BlockRef, str, int]


def _derived_usage_point(mr_href: str, up_link: str | None) -> str:
    """The usage point href a MeterReading names (gascap.pge.espi.links, first rule)."""
    if up_link:
        up_href = up_link.rstrip("/")
        if up_href.endswith("/MeterReading") and up_href[: -len("/MeterReading")]:
            return up_href[: -len("/MeterReading")]
    head, _, _last = mr_href.rstrip("/").rpartition("/")
    if head.endswith("/MeterReading"):
        return head[: -len("/MeterReading")].rstrip("/") or mr_href
    return mr_href


def stable_series(doc: EspiDocument, block: BlockRef) -> Series | None:
    """The block's series when the rest of the document cannot change it, else None.

    The same answer `resolve_series` gives at the end, taken only from exact matches: the
    block's entry has ended, its MeterReading entry is read, the usage point it derives is
    read, and the first of its related links that is not a block or LocalTimeParameters
    link is a ReadingType already read (a later entry cannot add an earlier candidate).
    """
    mr_href = block.meter_reading_href
    if mr_href is None:
        return None
    mr = doc.meter_readings.get(mr_href)
    if mr is None:
        return None
    up_href = _derived_usage_point(mr_href, mr.links.up_href)
    if up_href not in doc.usage_points:
        return None
    for href in mr.links.related:
        if href in doc.reading_types:
            return Series(
                usage_point_href=up_href,
                meter_reading_href=mr_href,
                reading_type_href=href,
                reading_type=doc.reading_types[href],
            )
        if "/IntervalBlock" in href or "/LocalTimeParameters" in href:
            continue
        return None
    return None


@dataclass
class _Chunk:
    bounds: tuple[datetime, datetime]
    blocks: list[BlockRef]
    # The chunk's rows as one COPY text, and how many: the writer sends it in a few large
    # writes, each a short hold of the GIL (one write per parser batch, ~100 per MB, took
    # the GIL from the parser as often).
    text: str
    rows: int
    block_series: dict[int, int]
    fresh: frozenset[int]
    unique_rows: int | None


@dataclass
class OverlappedMerge:
    """Buffers a document's batches; loads each stable chunk and has a writer thread merge it
    while the parser goes on."""

    connection: BaseDatabaseWrapper
    store: DocumentStore
    source_label: str
    now: datetime
    chunk_rows: int = 0
    accepting: bool = True
    counts: MergeCounts = field(default_factory=MergeCounts)
    # Blocks merged here, and their series (the end of the document merges the others).
    block_series: dict[int, int] = field(default_factory=dict)
    merged_series: set[int] = field(default_factory=set)
    _buffer: list[Buffered] = field(default_factory=list)
    _buffered: int = 0
    _max_lock: int = -1
    _last_start: dict[str, Any] = field(default_factory=dict)
    _error: BaseException | None = None
    _thread: threading.Thread | None = None
    _sink: PostgresSink | None = None
    # psycopg's cursor of the import's connection, the writer's (Django's belongs to this thread).
    _cursor: Any = None

    def __post_init__(self) -> None:
        self.chunk_rows = self.chunk_rows or int(settings.GASCAP_INGEST_CHUNK_ROWS)

    def add(self, block: BlockRef, rows: list[ReadingRow]) -> None:
        """One parser batch. Hands off a chunk when enough stable readings are buffered;
        stops accepting (the caller takes `finish()`'s leftovers) when the buffer cannot
        drain."""
        self._buffer.append((block, copy_text(block.number, rows), len(rows)))
        self._buffered += len(rows)
        if self._buffered >= self.chunk_rows:
            self._hand_off()
            if self._buffered >= 4 * self.chunk_rows:
                self.accepting = False  # nothing stable to hand off: the ordinary path

    def _hand_off(self) -> None:
        doc = self.store.doc
        stable: dict[int, Series] = {}
        # Each series' latest start merged so far, with this chunk's blocks.
        last = dict(self._last_start)
        cut = 0
        for index, (block, _text, _count) in enumerate(self._buffer):
            if block.number not in stable:
                series = stable_series(doc, block)
                if series is None:
                    break
                previous = last.get(series.meter_reading_href)
                if not block.ordered or (
                    previous is not None
                    and block.first_start is not None
                    and block.first_start <= previous
                ):
                    # A key of this block may repeat one merged before: not early.
                    self.accepting = False
                    break
                if block.last_start is not None:
                    last[series.meter_reading_href] = block.last_start
                stable[block.number] = series
            cut = index + 1
        # A stable block's entry has ended: all its readings are in the buffer.
        if cut == 0:
            return
        items = self._buffer[:cut]
        numbers = {block.number for block, _text, _count in items}
        bounds = _chunk_bounds([block for block, _text, _count in items])
        if bounds is None:
            self.accepting = False  # the end of the document checks and refuses them
            return
        # The connection is this thread's again once the writer is done with the last chunk.
        self._wait()
        # The chunk's months get their partitions here: the ORM and Django's connection
        # wrapper belong to this thread (ingest.partitions).
        months_ensure(
            months=months_between(month_of(bounds[0]), month_of(bounds[1])),
            connection=self.connection,
        )
        block_series = self.store.series_for(
            {n: s for n, s in stable.items() if n in numbers}, final=False
        )
        new_ids = set(block_series.values()) - self.merged_series
        if new_ids and min(new_ids) <= self._max_lock:
            self.accepting = False  # out of lock order: the rest is merged at the end
            return
        if new_ids:
            self._max_lock = max(new_ids)
        self._last_start = last
        blocks = [block for block, _text, _count in items]
        chunk = _Chunk(
            bounds=bounds,
            blocks=blocks,
            text="".join([text for _block, text, _count in items]),
            rows=sum(count for _block, _text, count in items),
            block_series=block_series,
            # Keys never repeat across chunks (above): a series this import created takes
            # its rows without comparison in every chunk; the others are compared.
            fresh=frozenset(set(block_series.values()) & self.store.fresh),
            unique_rows=_chunk_unique_rows(blocks, block_series),
        )
        self.merged_series |= set(block_series.values())
        self.block_series.update(block_series)
        self._buffer = self._buffer[cut:]
        self._buffered = sum(count for _block, _text, count in self._buffer)
        if self._sink is None:
            self.connection.ensure_connection()
            self._cursor = self.connection.connection.cursor()
            self._sink = PostgresSink(self.connection, cursor=self._cursor)
        self._thread = threading.Thread(
            target=self._merge,
            args=(chunk, self._sink, self._cursor),
            name="espi-merge",
            daemon=True,
        )
        self._thread.start()

    def _merge(self, chunk: _Chunk, sink: PostgresSink, cursor: Any) -> None:
        """The writer thread: load the chunk, merge it, then refresh its rollups.

        Its rows were formatted as COPY text by the parser's thread as they came (Python
        work: here it would contend for the GIL with the parser). Writing them is not, and
        neither is waiting for PostgreSQL to take them in: on the parser's thread that wait
        alone cost 0.2 s of a 2.3 s import (`make bench SIZE=medium`)."""
        try:
            # Django's own error classes, as from its cursors: this thread uses psycopg's
            # cursor, and the fetch retries a `django.db.DatabaseError` (a deadlock with
            # another import, a lost connection) where it would fail anything else.
            with self.connection.wrap_database_errors:
                sink.open()
                sink.add_text(chunk.text, chunk.rows)
                sink.close_load()
                counts = sink.merge(
                    MergeBatch(
                        block_series=chunk.block_series,
                        block_updated={
                            block.number: block.updated
                            for block in chunk.blocks
                            if block.number in chunk.block_series
                        },
                        source_label=self.source_label,
                        now=self.now,
                        fresh_series=chunk.fresh,
                        unique_rows=chunk.unique_rows,
                        bounds=chunk.bounds,
                    )
                )
                # Same transaction, same rule as a whole document: a chunk that changed no
                # reading writes no rollup. Compiled and run here, only when needed: compiling
                # touches no database (ingest.rollups), and on the parser's thread it took a
                # third of each hand-off.
                if counts.new or counts.updated:
                    rollups_after_import(
                        block_series=chunk.block_series,
                        blocks=chunk.blocks,
                        cursor=cursor,
                        connection=self.connection,
                    )
                self.counts.new += counts.new
                self.counts.updated += counts.updated
                self.counts.unchanged += counts.unchanged
                self.counts.stale += counts.stale
        except BaseException as exc:
            self._error = exc

    def _join(self) -> None:
        """Until the writer has finished its chunk."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _wait(self) -> None:
        """Until the writer has finished its chunk; its error, if it failed."""
        self._join()
        if self._error is not None:
            raise self._error

    def finish(self) -> list[Buffered]:
        """Wait for the writer; the batches it did not merge (for the ordinary path)."""
        self.accepting = False
        self._wait()
        left, self._buffer = self._buffer, []
        return left

    def abort(self) -> None:
        """The import is failing: wait for the writer (its work is rolled back with the rest)."""
        self.accepting = False
        self._join()
        if self._sink is not None:
            self._sink.abort()


def _chunk_bounds(blocks: list[BlockRef]) -> tuple[datetime, datetime] | None:
    """The chunk's first and last start (its blocks' starts are increasing), or None when
    they are out of the range a document may hold (refused at its end, by ingest.partitions)."""
    try:
        first = min(block.first_start for block in blocks if block.first_start is not None)
        last = max(block.last_start for block in blocks if block.last_start is not None)
        low = datetime.fromtimestamp(float(first), tz=UTC)
        high = datetime.fromtimestamp(float(last), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if low.year < 1970 or high.year > 9998:
        return None
    if len(months_between(month_of(low), month_of(high))) > MAX_DOCUMENT_MONTHS:
        return None
    return low, high


def _chunk_unique_rows(blocks: list[BlockRef], block_series: dict[int, int]) -> int | None:
    # Here, not above: ingest.readings imports this module (a cycle).
    from ingest.readings import _unique_rows

    return _unique_rows(blocks, block_series)
