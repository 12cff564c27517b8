"""docs/reliability.md test 47: the same interval twice in one document gives a deterministic result
(the last copy wins, as designed: docs/espi.md, "Storage"), and DST days are stored completely
with UTC keys: PG&E's fall-back day has 100 quarter-hours, its spring-forward day 92
(docs/espi-model.md §5). Expected instants come from zoneinfo wall-clock arithmetic here, not from
the writer's day bounds."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest.models import MeterReading
from ingest.readings import document_import
from ingest.selectors import series_missing_days
from tests.integrity.conftest import stored_readings, stored_revisions
from tests.integrity.espi_writer import Block, SeriesDef, day_bounds, day_starts, feed

pytestmark = pytest.mark.django_db(transaction=True)

PACIFIC = ZoneInfo("America/Los_Angeles")
QUARTER = SeriesDef("UPINTEG03", "MRDEL15", 900, 1)
HOURLY = SeriesDef("UPINTEG03", "MRDEL60", 3600, 1)
NOW = datetime(2025, 12, 1, tzinfo=UTC)
FALL_BACK = date(2025, 11, 2)
SPRING_FORWARD = date(2025, 3, 9)


def _wall_clock_instants(day: date, minutes: int) -> set[int]:
    """Every UTC instant whose Pacific wall-clock time falls on `day`, every `minutes`:
    both folds of the repeated hour, and the skipped hour's times collapse onto real ones."""
    instants = set()
    for hour in range(24):
        for minute in range(0, 60, minutes):
            for fold in (0, 1):
                local = datetime(day.year, day.month, day.day, hour, minute, fold=fold)
                moment = local.replace(tzinfo=PACIFIC)
                # A non-existent wall time (the spring gap) maps outside the real wall clock:
                # keep only instants that read back as this exact wall time.
                back = moment.astimezone(UTC).astimezone(PACIFIC)
                if back.replace(tzinfo=None, fold=0) == local.replace(fold=0):
                    instants.add(int(moment.astimezone(UTC).timestamp()))
    return instants


def _day_block(series: SeriesDef, day: date, *, value: int = 500) -> Block:
    first, after = day_bounds(day)
    rows = [(s, series.interval, value, 19, None) for s in day_starts(day, series.interval)]
    return Block(series, first, after - first, rows)


def test_wall_clock_arithmetic_has_the_dst_counts():
    # The reference itself: 100 and 92 quarter-hours, 25 and 23 hours.
    assert len(_wall_clock_instants(FALL_BACK, 15)) == 100
    assert len(_wall_clock_instants(SPRING_FORWARD, 15)) == 92
    assert len(_wall_clock_instants(FALL_BACK, 60)) == 25
    assert len(_wall_clock_instants(SPRING_FORWARD, 60)) == 23
    assert len(_wall_clock_instants(date(2025, 11, 3), 15)) == 96


@pytest.mark.parametrize(
    ("day", "count"), [(FALL_BACK, 100), (SPRING_FORWARD, 92), (date(2025, 11, 3), 96)]
)
def test_dst_day_stored_completely_with_utc_keys(day, count):
    result = document_import(
        source=feed([_day_block(QUARTER, day), _day_block(HOURLY, day)]),
        source_label="dst",
        now=NOW,
    )
    assert result.readings_new == count + count // 4
    stored = stored_readings()
    quarter = {start for (_up, mr, start, d) in stored if mr == "MRDEL15" and d == 900}
    hourly = {start for (_up, mr, start, d) in stored if mr == "MRDEL60" and d == 3600}
    assert len(quarter) == count
    assert quarter == _wall_clock_instants(day, 15)
    assert hourly == _wall_clock_instants(day, 60)
    # Keys are UTC instants: consecutive, 900 s apart, starting at local midnight.
    ordered = sorted(quarter)
    assert all(b - a == 900 for a, b in itertools.pairwise(ordered))
    midnight = datetime(day.year, day.month, day.day, tzinfo=PACIFIC)
    assert ordered[0] == int(midnight.timestamp())
    assert ordered[-1] + 900 == int((midnight + timedelta(days=1)).timestamp())


def test_complete_dst_days_are_not_gaps_and_a_missing_quarter_hour_is():
    days = [SPRING_FORWARD, FALL_BACK]
    blocks = [_day_block(QUARTER, day) for day in days]
    # One quarter-hour of the fall-back day's repeated hour (second pass, PST) left out.
    blocks.append(_day_block(QUARTER, date(2025, 11, 3)))
    second_one_am = int(datetime(2025, 11, 2, 1, 15, fold=1, tzinfo=PACIFIC).timestamp())
    blocks[1].rows = [row for row in blocks[1].rows if row[0] != second_one_am]
    document_import(source=feed(blocks), source_label="dst", now=NOW)
    series = MeterReading.objects.get(meter_reading_id="MRDEL15")
    assert (
        series_missing_days(meter_reading=series, first_day=SPRING_FORWARD, last_day=SPRING_FORWARD)
        == []
    )
    assert series_missing_days(
        meter_reading=series, first_day=FALL_BACK, last_day=date(2025, 11, 3)
    ) == [FALL_BACK]


def test_same_interval_twice_in_one_block_last_copy_wins():
    block = _day_block(HOURLY, date(2025, 11, 3))
    start = block.rows[5][0]
    block.rows.append((start, 3600, 777, 17, 1234))  # the same interval again, later
    result = document_import(source=feed([block]), source_label="dup", now=NOW)
    assert (result.readings_new, result.readings_updated) == (24, 0)
    stored = stored_readings()
    assert len(stored) == 24
    assert stored[("UPINTEG03", "MRDEL60", start, 3600)] == (777, 17, 1234)
    assert stored_revisions() == []  # a duplicate inside one document is not a correction


def test_same_day_twice_in_one_document_last_block_wins_and_is_deterministic():
    day = date(2025, 11, 2)
    first = _day_block(HOURLY, day, value=100)
    second = _day_block(HOURLY, day, value=200)
    result = document_import(source=feed([first, second]), source_label="a", now=NOW)
    assert result.readings_new == 25
    assert {v for v, _q, _c in stored_readings().values()} == {200}
    # Delivered again in the other order: the last copy wins again, now as a correction.
    result = document_import(source=feed([second, first]), source_label="b", now=NOW)
    assert (result.readings_new, result.readings_updated, result.readings_unchanged) == (
        0,
        25,
        0,
    )
    assert {v for v, _q, _c in stored_readings().values()} == {100}
    revisions = stored_revisions()
    assert len(revisions) == 25
    assert {(old[0], new[0]) for _key, old, new in revisions} == {(200, 100)}
    # And the same bytes again: nothing changes.
    result = document_import(source=feed([second, first]), source_label="c", now=NOW)
    assert (result.readings_new, result.readings_updated) == (0, 0)
    assert len(stored_revisions()) == 25
