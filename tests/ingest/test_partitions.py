"""Readings partitioned by month on PostgreSQL (ingest/partitions.py, migration 0006,
docs/scale.md §5): the migration keeps every row, an import creates the months it needs, the
merge, a rollup refresh and the API's readings page read only the month they touch (their
EXPLAIN, of the very statements they ran), and the drop command removes only months past
retention. SQLite keeps one table (the last test)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.readings_page import readings_page
from ingest import partitions
from ingest.models import IntervalReading, MeterReading, ReadingRevision
from ingest.partitions import month_add, month_of, partition_name
from ingest.readings import document_import
from ingest.rollups import rollups_refresh
from tests.ingest.test_readings import DAY, NOW, feed

MIGRATION = "0006_readings_partitioned"
MARCH = date(2026, 3, 1)  # DAY (2026-03-09) is in it


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


def _relkind() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = 'ingest_intervalreading'::regclass"
        )
        return cursor.fetchone()[0]


def _count_and_checksum() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), md5(string_agg(r::text, ',' ORDER BY meter_reading_id, start,"
            " duration)) FROM ingest_intervalreading r"
        )
        return cursor.fetchone()


def _rows_by_partition() -> dict[str, tuple[datetime, datetime, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, min(start), max(start), count(*)"
            " FROM ingest_intervalreading GROUP BY 1"
        )
        return {name: (low, high, n) for name, low, high, n in cursor.fetchall()}


def _explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _partitions_in(plan: str) -> set[str]:
    return set(re.findall(r"ingest_intervalreading_p\d{4}_\d{2}", plan))


# --- the converting migration ---------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_migration_converts_a_table_with_rows_keeping_every_row():
    executor = MigrationExecutor(connection)
    previous = executor.loader.graph.node_map[("ingest", MIGRATION)].parents
    (before_node,) = [p.key for p in previous if p.key[0] == "ingest"]
    leaves = executor.loader.graph.leaf_nodes("ingest")
    executor.migrate([before_node])
    assert _relkind() == "r"
    with connection.cursor() as cursor:
        # 2,400 hourly readings from 2019-12-30 to 2020-04-08, with NULLs and costs, in 7
        # series: rows in five months, across a year boundary.
        cursor.execute(
            "INSERT INTO ingest_intervalreading (meter_reading_id, start, duration, value, cost,"
            " quality, tou, cpp, consumption_tier, source_updated)"
            " SELECT g % 7 + 1, timestamptz '2019-12-30 00:00+00' + g * interval '1 hour',"
            " 3600, g * 13, CASE WHEN g % 3 = 0 THEN NULL ELSE g END, g % 20,"
            " NULL, 0, 1, timestamptz '2020-05-01 00:00+00'"
            " FROM generate_series(0, 2399) g"
        )
    before = _count_and_checksum()
    assert before[0] == 2400

    executor = MigrationExecutor(connection)
    executor.migrate(leaves)

    assert _relkind() == "p"
    assert _count_and_checksum() == before
    by_partition = _rows_by_partition()
    assert set(by_partition) == {
        partition_name(date(2019, 12, 1)),
        *(partition_name(date(2020, m, 1)) for m in (1, 2, 3, 4)),
    }
    for name, (low, high, _n) in by_partition.items():
        assert partition_name(month_of(low)) == name == partition_name(month_of(high))
    # The current month and the next three were made too: today's imports need no DDL.
    current = month_of(timezone.now())
    existing = set(partitions.months_existing())
    assert {month_add(current, n) for n in range(-1, 4)} <= existing
    # The primary key kept its name and still refuses a duplicate key.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'ingest_intervalreading'::regclass"
            " AND contype = 'p'"
        )
        assert cursor.fetchone()[0] == "ingest_intervalreading_pkey"


# --- the importer creates the months it needs --------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_import_creates_the_missing_months_it_covers():
    may, june = date(2011, 5, 1), date(2011, 6, 1)
    with connection.cursor() as cursor:  # an earlier committed test may have made them
        for month in (may, june):
            cursor.execute(f"DROP TABLE IF EXISTS {partition_name(month)}")
    assert not {may, june} & set(partitions.months_existing())
    start = int(datetime(2011, 5, 31, 20, 0, tzinfo=UTC).timestamp())  # 24 h over the month end

    result = document_import(
        source=feed(values=list(range(24)), start=start), source_label="a", now=NOW
    )

    assert result.readings_new == 24
    assert {may, june} <= set(partitions.months_existing())
    counts = {name: n for name, (_low, _high, n) in _rows_by_partition().items()}
    assert counts == {partition_name(may): 4, partition_name(june): 20}
    # Again: the months exist, nothing is created, the re-import changes nothing.
    assert partitions.months_ensure(months=[may, june]) == []
    again = document_import(
        source=feed(values=list(range(24)), start=start), source_label="b", now=NOW
    )
    assert again.readings_unchanged == 24


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_document_spanning_too_many_months_is_refused_before_any_table_is_made():
    before = partitions.months_existing()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE span_load (start double precision) ON COMMIT DROP")
        cursor.execute(
            "INSERT INTO span_load VALUES (%s), (%s)",
            [
                datetime(1990, 1, 1, tzinfo=UTC).timestamp(),
                datetime(2011, 1, 1, tzinfo=UTC).timestamp(),
            ],
        )
        with pytest.raises(partitions.EspiRejected, match="253 months"):
            partitions.months_ensure_for_load(cursor, load_table="span_load", connection=connection)
    assert partitions.months_existing() == before


# --- partition pruning: the statements that ran read only their month ----------------------


def _series_with_three_months() -> MeterReading:
    partitions.months_ensure(months=[month_add(MARCH, -1), MARCH, month_add(MARCH, 1)])
    document_import(source=feed(values=list(range(24))), source_label="first", now=NOW)
    return MeterReading.objects.get()


def _statements(queries: CaptureQueriesContext, pattern: str) -> list[str]:
    """The captured statements matching `pattern`; a server-side cursor's DECLARE (the
    ORM's `.iterator()`) is reduced to its query."""
    found = []
    for query in queries.captured_queries:
        sql = re.sub(r'^DECLARE "[^"]+" NO SCROLL CURSOR (WITH HOLD )?FOR ', "", query["sql"])
        if re.search(pattern, sql, re.S):
            found.append(sql)
    return found


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_merge_of_a_one_month_document_reads_only_that_months_partition():
    _series_with_three_months()
    with CaptureQueriesContext(connection) as queries:
        # Changed values of a stored series: the full merge (join, update, revisions).
        document_import(source=feed(values=[v + 1 for v in range(24)]), source_label="b", now=NOW)
    assert IntervalReading.objects.filter(value__gte=1).count() == 24
    (merge,) = _statements(queries, r"^WITH src AS .*UPDATE ingest_intervalreading")
    plan = _explain(merge)
    assert _partitions_in(plan) == {partition_name(MARCH)}, plan


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_rollup_refresh_of_one_day_reads_only_that_months_partition():
    series = _series_with_three_months()
    day = datetime.fromtimestamp(DAY, tz=UTC).date()
    with CaptureQueriesContext(connection) as queries:
        rollups_refresh(spans={series.pk: (day, day)})
    # The daily totals are one INSERT … SELECT over the readings (ingest.rollups).
    (aggregate,) = _statements(
        queries, r"^INSERT INTO \"ingest_dailyrollup\" .*FROM \"ingest_intervalreading\""
    )
    plan = _explain(aggregate)
    assert _partitions_in(plan) == {partition_name(MARCH)}, plan


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_api_readings_page_of_one_day_reads_only_that_months_partition():
    series = _series_with_three_months()
    start = datetime.fromtimestamp(DAY, tz=UTC)
    with CaptureQueriesContext(connection) as queries:
        page = readings_page(
            series=[series], start=start, end=start + timedelta(days=1), cursor=None, limit=100
        )
    assert len(page["readings"]) == 24
    (select,) = _statements(queries, r"^SELECT .*FROM \"ingest_intervalreading\"")
    plan = _explain(select)
    assert _partitions_in(plan) == {partition_name(MARCH)}, plan


# --- dropping months past retention -------------------------------------------------------------


def _reading_and_revision(series: MeterReading, moment: datetime) -> None:
    partitions.months_ensure(months=[moment])
    IntervalReading.objects.create(meter_reading=series, start=moment, duration=3600, value=1)
    ReadingRevision.objects.create(
        meter_reading=series,
        start=moment,
        duration=3600,
        old_value=0,
        new_value=1,
        source_label="t",
        received_at=moment,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_drop_command_removes_only_months_past_retention(settings):
    current = month_of(timezone.now())
    seed = int(datetime(current.year, current.month, 5, 8, tzinfo=UTC).timestamp())
    document_import(source=feed(values=[1], start=seed), source_label="seed", now=NOW)
    series = MeterReading.objects.get()
    old = [date(2015, 1, 1), date(2015, 2, 1), month_add(current, -4)]  # past 3 kept months
    kept = [month_add(current, -3), month_add(current, -1), current]
    for month in old + kept:
        _reading_and_revision(series, datetime(month.year, month.month, 10, tzinfo=UTC))
    settings.GASCAP_READINGS_RETENTION_MONTHS = 3
    total = IntervalReading.objects.count()

    out = StringIO()
    call_command("readings_partitions_drop", stdout=out)  # dry run
    text = out.getvalue()
    for month in old:
        assert f"Would drop {partition_name(month)}" in text
    for month in kept:
        assert partition_name(month) not in text
    assert "Dry run: nothing dropped" in text
    assert IntervalReading.objects.count() == total
    assert set(old) <= set(partitions.months_existing())

    out = StringIO()
    call_command("readings_partitions_drop", "--commit", stdout=out)
    text = out.getvalue()
    existing = set(partitions.months_existing())
    assert not set(old) & existing
    assert set(kept) <= existing
    for month in old:
        assert f"Dropped {partition_name(month)}" in text
    assert IntervalReading.objects.count() == total - len(old)
    horizon = datetime(month_add(current, -3).year, month_add(current, -3).month, 1, tzinfo=UTC)
    assert not IntervalReading.objects.filter(start__lt=horizon).exists()
    assert not ReadingRevision.objects.filter(start__lt=horizon).exists()
    assert ReadingRevision.objects.filter(start__gte=horizon).count() == len(kept)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_drop_command_refuses_to_reach_recent_months():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least 3"):
        call_command("readings_partitions_drop", "--keep-months", "2", stdout=StringIO())


@pytest.mark.django_db
def test_sqlite_keeps_one_table_and_the_command_says_so(settings):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite behaviour")
    assert partitions.months_ensure(months=[MARCH]) == []
    assert partitions.months_existing() == []
    document_import(source=feed(values=[1, 2]), source_label="a", now=NOW)
    assert IntervalReading.objects.count() == 2
    out = StringIO()
    call_command("readings_partitions_drop", "--keep-months", "3", stdout=out)
    assert "not partitioned" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_daily_job_makes_the_previous_current_and_next_three_months():
    from ingest.tasks import readings_partitions_ahead_task

    far = datetime(2031, 7, 15, tzinfo=UTC)
    wanted = [date(2031, m, 1) for m in range(6, 11)]
    assert not set(wanted) & set(partitions.months_existing())
    assert partitions.months_ahead_ensure(now=far) == wanted
    assert partitions.months_ahead_ensure(now=far) == []
    readings_partitions_ahead_task()  # the beat task, at today's date
    assert month_add(month_of(timezone.now()), 3) in partitions.months_existing()


@pytest.mark.postgres
@pytest.mark.django_db
def test_recent_months_are_remembered_after_commit_older_ones_asked_each_time(
    django_capture_on_commit_callbacks,
):
    partitions.known_months_forget()
    current = month_of(timezone.now())
    old = date(2012, 2, 1)
    with django_capture_on_commit_callbacks(execute=True):
        partitions.months_ensure(months=[current, old])
    with CaptureQueriesContext(connection) as queries:
        assert partitions.months_ensure(months=[current]) == []
    assert len(queries) == 0  # a daily import's months: no catalog query at all
    with CaptureQueriesContext(connection) as queries:
        assert partitions.months_ensure(months=[old]) == []
    assert len(queries) == 1  # a history month: one look at the catalog
    # A rolled-back creation is not remembered: nothing is remembered without a commit.
    partitions.known_months_forget()
    partitions.months_ensure(months=[current])
    with CaptureQueriesContext(connection) as queries:
        partitions.months_ensure(months=[current])
    assert len(queries) == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_writer_thread_with_only_a_psycopg_cursor_can_ensure_its_months():
    # The shape of an overlapped merge: another thread, the import's connection and
    # transaction, psycopg's cursor (Django's connection belongs to the importing thread).
    august = date(2013, 8, 1)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {partition_name(august)}")
        cursor.execute("CREATE TEMP TABLE thread_load (start double precision) ON COMMIT DROP")
        cursor.execute(
            "INSERT INTO thread_load VALUES (%s)", [datetime(2013, 8, 20, tzinfo=UTC).timestamp()]
        )
    raw = connection.connection
    results: list[object] = []

    def writer() -> None:
        try:
            with raw.cursor() as cursor:
                results.append(
                    partitions.months_ensure_for_load(
                        cursor, load_table="thread_load", connection=connection
                    )
                )
        except BaseException as exc:  # reported below
            results.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(timeout=60)
    (result,) = results
    assert not isinstance(result, BaseException), result
    assert result[0] == datetime(2013, 8, 20, tzinfo=UTC)
    assert august in partitions.months_existing()
