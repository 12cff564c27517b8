"""Monthly partitions of the interval readings (PostgreSQL): every piece of their DDL.

Shape. On PostgreSQL `ingest_intervalreading` is `PARTITION BY RANGE (start)` with one
partition per UTC calendar month, `ingest_intervalreading_pYYYY_MM` (migration 0006 converts
an existing table). The primary key `(meter_reading_id, start, duration)` already holds the
key (ingest.models.readings), so every partition keeps it and the Django model is unchanged:
no `id` to widen into a `CompositePrimaryKey`, no new column; the ORM, the admin, the API and
the merge's `INSERT`/`UPDATE` see one table. SQLite keeps one plain table (every function
here returns at once on another vendor).

Revisions stay one table. `ingest_readingrevision` gets a row only when a delivered value
differs from the stored one (a correction, a stale snapshot), not one per reading; widening
its `id` primary key to `(id, start)` would give it a composite key the admin cannot edit, for
a table orders of magnitude smaller. Dropping a month deletes that month's revisions (one
`DELETE` on a small table).

Rows outside every month: an error, no DEFAULT partition. The importer creates the months a
document covers before its merge (`months_ensure_for_load`), and the daily beat job
(`months_ahead_ensure`) creates the previous, current and next three months, so no import
meets a missing month. A DEFAULT partition would make that worse, not safer: creating a month
whose rows sit in the default must move them first, every later attach scans the default
under an exclusive lock, and its rows are never pruned. Anything that writes readings
elsewhere (a test, a script) calls `months_ensure` first, or PostgreSQL refuses the row ("no
partition of relation ... found for row") and its transaction rolls back: nothing half-stored.
A document whose readings span more than `MAX_DOCUMENT_MONTHS` months, or fall outside
1970-9998, is refused (`EspiRejected`) rather than creating hundreds of tables.

Locks. A month is made as a plain table, then `ATTACH PARTITION`ed: attaching takes SHARE
UPDATE EXCLUSIVE on the parent (readers and writers go on), where `CREATE TABLE … PARTITION
OF` would take ACCESS EXCLUSIVE until the importing transaction commits. Creators serialise
on an advisory lock and look again under it.

Cost on the import path: each process remembers the recent months it saw committed (the
current month and two either side; `_known`), so a daily import asks the catalog nothing.
Older months (a history request) cost one catalog query per document. Months are remembered
only after commit (a rolled-back creation is forgotten with its transaction), and the drop
command refuses to drop a month a process may remember (`MIN_KEEP_MONTHS`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection as default_connection
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from gascap.pge.espi import EspiRejected

logger = logging.getLogger(__name__)

PARENT = "ingest_intervalreading"
REVISIONS = "ingest_readingrevision"
MONTHS_AHEAD = 3
MAX_DOCUMENT_MONTHS = 120  # ten years: PG&E's history requests reach two (docs/pge-protocol.md)
# The drop command keeps at least this many months before the current one: none a process
# may hold in `_known` (which spans the current month +-2).
MIN_KEEP_MONTHS = 3
_KNOWN_SPAN = 2
# pg_advisory_xact_lock(int, int) key space of partition DDL: "PART".
LOCK_NAMESPACE = 0x50415254

_known: set[date] = set()


def month_of(moment: datetime | date) -> date:
    """The first day of the UTC month holding `moment`."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every month from `first` to `last`, both included."""
    months, month = [], month_of(first)
    while month <= last:
        months.append(month)
        month = month_add(month, 1)
    return months


def partition_name(month: date) -> str:
    return f"{PARENT}_p{month.year:04d}_{month.month:02d}"


def _bounds(month: date) -> tuple[datetime, datetime]:
    low = datetime(month.year, month.month, 1, tzinfo=UTC)
    high_month = month_add(month, 1)
    return low, datetime(high_month.year, high_month.month, 1, tzinfo=UTC)


def _month_from_name(name: str) -> date | None:
    prefix = f"{PARENT}_p"
    if not name.startswith(prefix):
        return None
    try:
        year, month = name[len(prefix) :].split("_")
        return date(int(year), int(month), 1)
    except ValueError:
        return None


def is_partitioned(connection: BaseDatabaseWrapper = default_connection) -> bool:
    """True on PostgreSQL once migration 0006 made the readings a partitioned table."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def months_existing(connection: BaseDatabaseWrapper = default_connection) -> list[date]:
    """The months that have a partition, in order (empty on SQLite)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        return _months_existing(cursor)


def _months_existing(cursor: Any) -> list[date]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%s)",
        [PARENT],
    )
    names = [row[0] for row in cursor.fetchall()]
    return sorted(m for m in map(_month_from_name, names) if m is not None)


def _is_recent(month: date) -> bool:
    current = month_of(datetime.now(tz=UTC))
    return month_add(current, -_KNOWN_SPAN) <= month <= month_add(current, _KNOWN_SPAN)


def _known_recent() -> set[date]:
    """The remembered months still recent: a long-lived worker forgets a month once it may be
    dropped (the drop command keeps `MIN_KEEP_MONTHS` > `_KNOWN_SPAN`)."""
    _known.intersection_update({m for m in _known if _is_recent(m)})
    return _known


def _remember_after_commit(connection: BaseDatabaseWrapper, months: Iterable[date]) -> None:
    recent = {m for m in months if _is_recent(m)}
    if recent:
        transaction.on_commit(lambda: _known.update(recent), using=connection.alias)


def known_months_forget() -> None:
    """Forget the remembered months (the converting migration and the drop command)."""
    _known.clear()


def months_ensure(
    *, months: Iterable[date], connection: BaseDatabaseWrapper = default_connection
) -> list[date]:
    """Create the missing partitions of `months` in the caller's transaction; returns the
    months created. Nothing on SQLite."""
    wanted = {month_of(m) for m in months} - _known_recent()
    if not wanted or connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        missing = wanted - set(_months_existing(cursor))
    created: list[date] = []
    if missing:
        # A savepoint inside the caller's transaction; its own transaction in autocommit (the
        # advisory lock and the create-then-attach pair must not be split).
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            created = _months_create(cursor, missing)
    _remember_after_commit(connection, wanted)
    return created


def _months_create(cursor: Any, missing: set[date]) -> list[date]:
    """Create `missing` months not made meanwhile; the caller is inside a transaction."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [LOCK_NAMESPACE])
    existing = set(_months_existing(cursor))  # another creator may have committed
    created = [month for month in sorted(missing) if month not in existing]
    for month in created:
        _partition_create(cursor, month)
    if created:
        logger.info("Readings partitions created: %s", ", ".join(map(partition_name, created)))
    return created


def _partition_create(cursor: Any, month: date) -> None:
    name = partition_name(month)
    low, high = (f"{bound:%Y-%m-%d %H:%M:%S}+00" for bound in _bounds(month))
    # Names and bounds are built from integers here, never from input. The bounds are literals:
    # DDL takes no bound parameters, and the cursor may be psycopg's own (server-side binding).
    cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
    cursor.execute(
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')"
    )


def months_ahead_ensure(
    *, now: datetime, connection: BaseDatabaseWrapper = default_connection
) -> list[date]:
    """The daily job: the previous, current and next `MONTHS_AHEAD` months exist."""
    current = month_of(now)
    with transaction.atomic(using=connection.alias):
        return months_ensure(
            months=months_between(month_add(current, -1), month_add(current, MONTHS_AHEAD)),
            connection=connection,
        )


def months_ensure_for_load(
    cursor: Any, *, load_table: str, connection: BaseDatabaseWrapper | None = None
) -> tuple[datetime, datetime] | None:
    """The merge's one call: the months of the rows loaded in `load_table` (a `start` column
    of epoch seconds) exist. Returns (first start, last start) of the load, which the merge
    puts in its join so the planner reads only those months' partitions; None when empty.

    Every statement goes through `cursor`, inside the caller's (the import's) transaction,
    so a writer thread holding only a psycopg cursor of the import's connection may call it.
    `connection` (Django's) lets the months be remembered after commit; only its own thread
    may use it, so elsewhere nothing is remembered (the catalog is asked again next time)."""
    cursor.execute(f"SELECT min(start), max(start) FROM {load_table}")  # noqa: S608 - our temp table
    low, high = cursor.fetchone()
    if low is None:
        return None
    try:
        first = datetime.fromtimestamp(low, tz=UTC)
        last = datetime.fromtimestamp(high, tz=UTC)
    except (OverflowError, OSError, ValueError):
        first = last = datetime(1, 1, 1, tzinfo=UTC)
    if first.year < 1970 or last.year > 9998:
        raise EspiRejected("readings_out_of_range", "Readings start outside 1970-9998")
    months = months_between(month_of(first), month_of(last))
    if len(months) > MAX_DOCUMENT_MONTHS:
        raise EspiRejected(
            "readings_span",
            f"Readings span {len(months)} months ({first:%Y-%m} to {last:%Y-%m}); at most"
            f" {MAX_DOCUMENT_MONTHS} per document",
        )
    wanted = set(months) - _known_recent()
    if wanted:
        missing = wanted - set(_months_existing(cursor))
        if missing:
            _months_create(cursor, missing)
        if connection is not None and connection._thread_ident == threading.get_ident():
            _remember_after_commit(connection, wanted)
    return first, last


@dataclass(frozen=True, slots=True)
class MonthDrop:
    month: date
    name: str
    readings_estimate: int
    bytes: int
    revisions: int | None = None  # deleted (None: dry run)


def months_past_retention(
    *, keep_months: int, now: datetime, connection: BaseDatabaseWrapper = default_connection
) -> list[date]:
    """Months wholly older than the current month minus `keep_months`."""
    if keep_months < MIN_KEEP_MONTHS:
        raise ValueError(f"keep_months must be at least {MIN_KEEP_MONTHS}")
    horizon = month_add(month_of(now), -keep_months)
    return [m for m in months_existing(connection) if m < horizon]


def months_drop(
    *,
    keep_months: int,
    now: datetime,
    commit: bool,
    connection: BaseDatabaseWrapper = default_connection,
) -> list[MonthDrop]:
    """Detach and drop each month past retention (with its revisions); a dry run (commit
    False) only reports them. Outside a transaction the detach is CONCURRENTLY (readers and
    writers of other months never wait); inside one (a test) a plain DETACH."""
    drops = []
    for month in months_past_retention(keep_months=keep_months, now=now, connection=connection):
        name = partition_name(month)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT greatest(reltuples, 0)::bigint, pg_total_relation_size(oid)"
                " FROM pg_class WHERE oid = to_regclass(%s)",
                [name],
            )
            estimate, size = cursor.fetchone()
            revisions = None
            if commit:
                revisions = _month_drop(cursor, connection, month)
        drops.append(MonthDrop(month, name, int(estimate), int(size), revisions))
    if commit and drops:
        known_months_forget()
        logger.warning("Readings partitions dropped: %s", ", ".join(d.name for d in drops))
    return drops


def _month_drop(cursor: Any, connection: BaseDatabaseWrapper, month: date) -> int:
    name = partition_name(month)
    low, high = _bounds(month)
    concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
    cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}{concurrently}")
    with transaction.atomic(using=connection.alias):
        cursor.execute(
            f"DELETE FROM {REVISIONS} WHERE start >= %s AND start < %s",  # noqa: S608
            [low, high],
        )
        revisions = cursor.rowcount
        cursor.execute(f"DROP TABLE {name}")
    return int(revisions)
