"""Out-of-order deliveries (docs/reliability.md test 44, issue 10 §6): the latest snapshot by
Atom `updated` wins, whatever order the documents are processed in.

PG&E's real 2019 samples are one such pair: the 2019-10-16 file (two daily blocks, entries
updated 2019-12-23) also holds the 2019-10-17 day, which the 2019-10-17 file (updated
2019-12-18, *earlier*) delivers alone. Their values agree; the tests give the older file a
few different values to play the part of the superseded snapshot.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from ingest.models import IntervalReading, ReadingRevision
from ingest.readings import document_import
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db

NEWER = FIXTURES / "pge_smd_2019_electric_hourly_bulk_2019-10-16_two_blocks.xml"
OLDER = FIXTURES / "pge_smd_2019_electric_hourly_bulk_2019-10-17_overlaps_previous.xml"
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
# Three 2019-10-17 readings (start epoch: value in both real files).
CHANGED = {1571295600: 2668300, 1571331600: 794700, 1571378400: 1643400}
NEWER_UPDATED = datetime(2019, 12, 23, 19, 33, 56, 446000, tzinfo=UTC)  # its 10-17 block


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


def older_snapshot() -> bytes:
    """The real 2019-10-17 file with three values as an earlier PG&E estimate had them."""
    data = OLDER.read_bytes()
    for value in CHANGED.values():
        old = f"<ns0:value>{value}</ns0:value>".encode()
        assert data.count(old) == 1
        data = data.replace(old, f"<ns0:value>{value + 111}</ns0:value>".encode())
    return data


def stored() -> dict[int, int]:
    return {
        int(start.timestamp()): value
        for start, value in IntervalReading.objects.values_list("start", "value")
    }


def test_an_older_snapshot_processed_after_a_newer_one_changes_nothing():
    document_import(source=str(NEWER), source_label="2019-10-16 file", now=NOW)
    golden = stored()
    assert len(golden) == 48

    result = document_import(source=older_snapshot(), source_label="2019-10-17 file", now=NOW)

    assert (result.readings_new, result.readings_updated) == (0, 0)
    assert (result.readings_stale, result.readings_unchanged) == (3, 21)
    assert stored() == golden
    stale = ReadingRevision.objects.order_by("start")
    assert [
        (int(r.start.timestamp()), r.old_value, r.new_value, r.stale, r.source_label) for r in stale
    ] == [(start, value, value + 111, True, "2019-10-17 file") for start, value in CHANGED.items()]
    assert all(r.source_updated < NEWER_UPDATED for r in stale)
    # Every stored reading still names the newer snapshot it came from.
    assert set(IntervalReading.objects.values_list("source_updated", flat=True)) == {
        datetime(2019, 12, 23, 19, 33, 56, 445000, tzinfo=UTC),
        NEWER_UPDATED,
    }


def test_the_stale_snapshot_again_writes_nothing():
    document_import(source=str(NEWER), source_label="2019-10-16 file", now=NOW)
    document_import(source=older_snapshot(), source_label="2019-10-17 file", now=NOW)
    before = (stored(), ReadingRevision.objects.count())
    result = document_import(source=older_snapshot(), source_label="again", now=NOW)
    assert (result.readings_new, result.readings_updated, result.readings_stale) == (0, 0, 3)
    assert (stored(), ReadingRevision.objects.count()) == before


def test_in_order_the_newer_snapshot_corrects_the_older():
    document_import(source=older_snapshot(), source_label="2019-10-17 file", now=NOW)
    result = document_import(source=str(NEWER), source_label="2019-10-16 file", now=NOW)
    assert (result.readings_new, result.readings_updated, result.readings_stale) == (24, 3, 0)
    assert {start: stored()[start] for start in CHANGED} == CHANGED
    revisions = ReadingRevision.objects.order_by("start")
    assert [(r.old_value, r.new_value, r.stale) for r in revisions] == [
        (value + 111, value, False) for value in CHANGED.values()
    ]


def test_a_newer_snapshot_with_equal_values_moves_the_stored_time_forward():
    """v1 (oldest) and v3 (newest) agree, v2 (between) differs and arrives last: v2 is
    stale, because v3 confirmed v1's values after it."""
    v1 = older_snapshot().replace(b"2019-12-18T20:10:33.016Z", b"2019-12-01T00:00:00Z")
    v3 = older_snapshot().replace(b"2019-12-18T20:10:33.016Z", b"2019-12-30T00:00:00Z")
    v2 = OLDER.read_bytes()  # 2019-12-18: the three values differ from v1/v3
    document_import(source=v1, source_label="v1", now=NOW)
    confirmed = document_import(source=v3, source_label="v3", now=NOW)
    assert (confirmed.readings_updated, confirmed.readings_unchanged) == (0, 24)
    late = document_import(source=v2, source_label="v2", now=NOW)
    assert (late.readings_updated, late.readings_stale) == (0, 3)
    assert {start: stored()[start] for start in CHANGED} == {
        start: value + 111 for start, value in CHANGED.items()
    }


@pytest.mark.postgres
def test_an_unchanged_reimport_of_the_newer_snapshot_writes_no_row():
    """The rule costs an unchanged re-import no write (checked with PostgreSQL's counters)."""
    document_import(source=str(NEWER), source_label="first", now=NOW)
    document_import(source=older_snapshot(), source_label="stale", now=NOW)

    def writes() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0),"
                " coalesce(sum(n_tup_hot_upd), 0)"
                " FROM pg_stat_xact_user_tables WHERE relname LIKE 'ingest\\_%%'"
            )
            return cursor.fetchone()

    before = writes()
    result = document_import(source=str(NEWER), source_label="replay", now=NOW)
    assert (result.readings_unchanged, result.readings_stale) == (48, 0)
    assert writes() == before
