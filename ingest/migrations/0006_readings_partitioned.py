"""Interval readings partitioned by UTC month on PostgreSQL (ingest/partitions.py says why and
how the months are kept). SQLite keeps its one table: both functions return at once there.

Forward, in this migration's one transaction:
1. the old table is locked SHARE: the API and the admin go on reading it, writers (imports)
   wait for the swap and then write into the partitions, so no row can be missed;
2. a partitioned twin with the same columns, defaults and primary key is created, with one
   partition for every month holding rows plus the previous, current and next three months;
3. the rows are copied in one `INSERT … SELECT` (tuple routing puts each in its month);
4. the old table is dropped and the twin takes its name and its primary key's name.
Django's model is unchanged (same table, columns and key), so there is no state operation.

Backward copies the rows into one plain table again (tests/ingest/test_partitions.py runs
both directions on a table with rows).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import migrations

TABLE = "ingest_intervalreading"
TWIN = "ingest_intervalreading_partitioned"
PLAIN = "ingest_intervalreading_plain"
MONTHS_AHEAD = 3


def _month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _partition_name(month: date) -> str:
    # The naming of ingest/partitions.py (copied: a migration must not change with the app).
    return f"{TABLE}_p{month.year:04d}_{month.month:02d}"


def _relkind(cursor, name: str) -> str | None:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return None if row is None else row[0]


def _forget_known_months() -> None:
    # A process that ran this (tests) may remember months of the table being replaced.
    from ingest import partitions

    partitions.known_months_forget()


def partition(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if _relkind(cursor, TABLE) == "p":
            return
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', start AT TIME ZONE 'UTC')::date FROM {TABLE}"  # noqa: S608
        )
        months = {row[0] for row in cursor.fetchall()}
        now = datetime.now(tz=UTC)
        current = date(now.year, now.month, 1)
        months |= {_month_add(current, n) for n in range(-1, MONTHS_AHEAD + 1)}
        cursor.execute(
            f"CREATE TABLE {TWIN} (LIKE {TABLE} INCLUDING DEFAULTS) PARTITION BY RANGE (start)"
        )
        cursor.execute(
            f"ALTER TABLE {TWIN} ADD CONSTRAINT {TWIN}_pkey"
            " PRIMARY KEY (meter_reading_id, start, duration)"
        )
        for month in sorted(months):
            high = _month_add(month, 1)
            cursor.execute(
                f"CREATE TABLE {_partition_name(month)} PARTITION OF {TWIN}"
                " FOR VALUES FROM (%s) TO (%s)",
                [
                    datetime(month.year, month.month, 1, tzinfo=UTC),
                    datetime(high.year, high.month, 1, tzinfo=UTC),
                ],
            )
        cursor.execute(f"INSERT INTO {TWIN} SELECT * FROM {TABLE}")  # noqa: S608
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.execute(f"ALTER TABLE {TWIN} RENAME TO {TABLE}")
        cursor.execute(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {TWIN}_pkey TO {TABLE}_pkey")
        cursor.execute(f"ANALYZE {TABLE}")
    _forget_known_months()


def unpartition(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if _relkind(cursor, TABLE) != "p":
            return
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE {TABLE} INCLUDING DEFAULTS)")
        cursor.execute(f"INSERT INTO {PLAIN} SELECT * FROM {TABLE}")  # noqa: S608
        cursor.execute(f"DROP TABLE {TABLE}")  # its partitions go with it
        cursor.execute(f"ALTER TABLE {PLAIN} RENAME TO {TABLE}")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey"
            " PRIMARY KEY (meter_reading_id, start, duration)"
        )
    _forget_known_months()


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0005_rollups"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
