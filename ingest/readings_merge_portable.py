"""The portable (SQLite) path of the reading merge: `executemany` into a temporary table while
the document streams, then the merge of `ingest.readings_merge` in a few statements with
`INSERT … ON CONFLICT … DO UPDATE` (SQLite has one writer at a time: no locks needed).
Same rules as the PostgreSQL path (docs/espi.md, "Storage" and "Out-of-order deliveries")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gascap.pge.espi.records import ReadingRow
from ingest.readings_merge import LOAD_COLUMNS, STALE_RECORDED, MergeBatch, MergeCounts, ReadingSink

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SQLITE_LOAD = f"INSERT INTO espi_load ({LOAD_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"  # noqa: S608


_SQLITE_BATCH = 2000


def _start_text(start: int | Decimal) -> str:
    """Django's SQLite datetime text for an epoch start (UTC, naive, microseconds if any)."""
    if isinstance(start, int):
        moment = _EPOCH + timedelta(seconds=start)
    else:
        moment = _EPOCH + timedelta(microseconds=int(start * 1_000_000))
    return str(moment.replace(tzinfo=None))


_SQLITE_REVISIONS = (
    "INSERT INTO ingest_readingrevision (meter_reading_id, start, duration, old_value,"  # noqa: S608 - fixed text
    " old_quality, old_cost, new_value, new_quality, new_cost, source_label,"
    " received_at, stale, source_updated)"
    " SELECT meter_reading_id, start, duration, old_value, old_quality, old_cost,"
    " value, quality, cost, %s, %s, is_stale, updated"
    " FROM espi_diff d WHERE NOT is_new AND changed AND NOT (is_stale AND "
    + STALE_RECORDED.replace("IS NOT DISTINCT FROM", "IS")
    + ")"
)


class PortableSink(ReadingSink):
    """SQLite: executemany into a temp table, then the merge in a few statements."""

    def open(self) -> None:
        self._cursor = self.connection.cursor()
        for statement in (
            "DROP TABLE IF EXISTS temp.espi_load",
            "DROP TABLE IF EXISTS temp.espi_block_series",
            "DROP TABLE IF EXISTS temp.espi_diff",
            "CREATE TEMP TABLE espi_load (seq INTEGER PRIMARY KEY, block INTEGER NOT NULL,"
            " start TEXT NOT NULL, duration INTEGER NOT NULL, value INTEGER NOT NULL,"
            " cost INTEGER, quality INTEGER, tou INTEGER, cpp INTEGER, tier INTEGER)",
            "CREATE TEMP TABLE espi_block_series (block INTEGER PRIMARY KEY, series INTEGER,"
            " updated TEXT)",
        ):
            self._cursor.execute(statement)
        self._pending: list[tuple[Any, ...]] = []

    def add(self, block: int, rows: Sequence[ReadingRow]) -> None:
        pending = self._pending
        for start, duration, value, cost, quality, tou, cpp, tier in rows:
            pending.append(
                (block, _start_text(start), duration, value, cost, quality, tou, cpp, tier)
            )
        self.rows_loaded += len(rows)
        if len(pending) >= _SQLITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._cursor.executemany(
                _SQLITE_LOAD,
                self._pending,
            )
            self._pending = []

    def close_load(self) -> None:
        self._flush()

    def abort(self) -> None:
        self._pending = []

    def merge(self, batch: MergeBatch) -> MergeCounts:
        # SQLite has no per-series shortcut: every row goes through the one merge below.
        self._flush()
        cursor = self._cursor
        # Django's own datetime text (UTC): compared as text with the stored column, which
        # orders like the instants (fixed-width date and time, fraction last).
        adapt = self.connection.ops.adapt_datetimefield_value
        cursor.executemany(
            "INSERT INTO espi_block_series (block, series, updated) VALUES (%s, %s, %s)",
            [
                (block, series, adapt(batch.block_updated.get(block)))
                for block, series in batch.block_series.items()
            ],
        )
        cursor.execute(
            "CREATE TEMP TABLE espi_diff AS"
            " WITH src AS ("
            "  SELECT b.series AS meter_reading_id, l.start, l.duration, l.value, l.cost,"
            "   l.quality, l.tou, l.cpp, l.tier, b.updated, ROW_NUMBER() OVER ("
            "    PARTITION BY b.series, l.start, l.duration ORDER BY l.seq DESC) AS rn"
            "  FROM espi_load l JOIN espi_block_series b ON b.block = l.block)"
            " SELECT s.meter_reading_id, s.start, s.duration, s.value, s.cost, s.quality,"
            "  s.tou, s.cpp, s.tier, s.updated, r.value AS old_value,"
            "  r.quality AS old_quality, r.cost AS old_cost, r.meter_reading_id IS NULL AS is_new,"
            "  (r.value IS NOT s.value OR r.quality IS NOT s.quality OR r.cost IS NOT s.cost)"
            "   AS changed,"
            "  coalesce(s.updated < r.source_updated, 0) AS is_stale"
            " FROM src s LEFT JOIN ingest_intervalreading r"
            "  ON r.meter_reading_id = s.meter_reading_id AND r.start = s.start"
            "  AND r.duration = s.duration"
            " WHERE s.rn = 1 AND (r.meter_reading_id IS NULL OR r.value IS NOT s.value"
            "  OR r.quality IS NOT s.quality OR r.cost IS NOT s.cost"
            "  OR s.updated > coalesce(r.source_updated, ''))"
        )
        cursor.execute(
            "SELECT (SELECT count(*) FROM (SELECT DISTINCT b.series, l.start, l.duration"
            "  FROM espi_load l JOIN espi_block_series b ON b.block = l.block)),"
            " (SELECT count(*) FROM espi_diff WHERE is_new),"
            " (SELECT count(*) FROM espi_diff WHERE NOT is_new AND changed AND NOT is_stale),"
            " (SELECT count(*) FROM espi_diff WHERE NOT is_new AND changed AND is_stale)"
        )
        distinct, new, updated, stale = cursor.fetchone()
        cursor.execute(_SQLITE_REVISIONS, [batch.source_label[:500], batch.now])
        # `WHERE NOT is_stale` also resolves SQLite's parsing ambiguity of
        # INSERT … SELECT … ON CONFLICT (a WHERE clause is required there).
        cursor.execute(
            "INSERT INTO ingest_intervalreading (meter_reading_id, start, duration, value,"
            " cost, quality, tou, cpp, consumption_tier, source_updated)"
            " SELECT meter_reading_id, start, duration, value, cost, quality, tou, cpp, tier,"
            " updated FROM espi_diff WHERE NOT is_stale ORDER BY meter_reading_id, start, duration"
            " ON CONFLICT (meter_reading_id, start, duration) DO UPDATE SET"
            " value = excluded.value, cost = excluded.cost, quality = excluded.quality,"
            " tou = excluded.tou, cpp = excluded.cpp, consumption_tier = excluded.consumption_tier,"
            " source_updated = coalesce(excluded.source_updated,"
            " ingest_intervalreading.source_updated)"
        )
        for table in ("espi_diff", "espi_load", "espi_block_series"):
            cursor.execute(f"DROP TABLE IF EXISTS temp.{table}")
        return MergeCounts(
            new=new, updated=updated, stale=stale, unchanged=distinct - new - updated - stale
        )
