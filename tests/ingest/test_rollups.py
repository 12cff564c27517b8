"""Daily and monthly rollups always equal a recomputation from the readings (issue 13,
"Totals as stored data"): a hypothesis state machine of deliveries, corrections, replays and
out-of-order re-deliveries (the documents of tests/integrity/test_model_based.py, both 2025 DST
days) plus PG&E-shaped gas days that start at 00:00:01, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ingest.models import DailyRollup, IntervalReading, MonthlyRollup
from ingest.readings import document_import
from tests.integrity.conftest import readings_wipe
from tests.integrity.espi_writer import Block, SeriesDef, day_bounds, feed
from tests.integrity.test_model_based import NOW, DocSpec, doc_specs

PACIFIC = ZoneInfo("America/Los_Angeles")
GAS = SeriesDef("UPGAS01", "MRGAS", 86400, 1, uom=169, multiplier=-8)
GAS_DAYS = tuple(date(2025, 10, 30) + timedelta(days=n) for n in range(5))  # over 11-02

Sums = tuple[int, int, int, int | None]


def recomputed() -> tuple[dict[tuple[int, date], Sums], dict[tuple[int, date], Sums]]:
    """Daily and monthly sums straight from the readings, in plain Python."""
    days: dict[tuple[int, date], list] = defaultdict(lambda: [0, 0, 0, None])
    for series, start, duration, value, cost in IntervalReading.objects.values_list(
        "meter_reading_id", "start", "duration", "value", "cost"
    ):
        day = start.astimezone(PACIFIC).date()
        for key in ((series, day), (series, day.replace(day=1), "m")):
            acc = days[key]  # type: ignore[index]
            acc[0] += value
            acc[1] += 1
            acc[2] += duration
            if cost is not None:
                acc[3] = (acc[3] or 0) + cost
    daily = {k: tuple(v) for k, v in days.items() if len(k) == 2}
    monthly = {k[:2]: tuple(v) for k, v in days.items() if len(k) == 3}
    return daily, monthly  # type: ignore[return-value]


def stored() -> tuple[dict[tuple[int, date], Sums], dict[tuple[int, date], Sums]]:
    daily = {
        (r.series_id, r.day): (r.value_sum, r.readings, r.covered_seconds, r.cost_sum)
        for r in DailyRollup.objects.all()
    }
    monthly = {
        (r.series_id, r.month): (r.value_sum, r.readings, r.covered_seconds, r.cost_sum)
        for r in MonthlyRollup.objects.all()
    }
    return daily, monthly


def gas_document(days: tuple[date, ...], variant: int) -> bytes:
    """PG&E's gas shape: one reading per day starting at local 00:00:01, 86,400 s long."""
    blocks = []
    for day in days:
        first, _after = day_bounds(day)
        value = 100_000_000 + variant * 7 + day.day
        blocks.append(Block(GAS, first + 1, 86400, [(first + 1, 86400, value, 17, None)]))
    return feed(blocks)


class RollupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        readings_wipe()
        self.docs: list[DocSpec] = []
        self.deliveries = 0
        self.last: bytes | None = None

    def _import(self, document: bytes) -> None:
        self.deliveries += 1
        document_import(source=document, source_label=f"d{self.deliveries}", now=NOW)
        self.last = document

    @rule(spec=doc_specs)
    def deliver(self, spec: DocSpec) -> None:
        self._import(spec.document())
        self.docs.append(spec)

    @precondition(lambda self: self.docs)
    @rule(which=st.integers(0, 50), variant=st.integers(1, 3))
    def correct(self, which: int, variant: int) -> None:
        spec = self.docs[which % len(self.docs)]
        corrected = replace(spec, variant=(spec.variant + variant) % 4)
        self._import(corrected.document())
        self.docs.append(corrected)

    @precondition(lambda self: self.docs)
    @rule(which=st.integers(0, 50))
    def redeliver_older(self, which: int) -> None:
        """A stale document arrives again: its (older) values win once more."""
        self._import(self.docs[which % len(self.docs)].document())

    @precondition(lambda self: self.last is not None)
    @rule()
    def replay_writes_no_rollup(self) -> None:
        """The document just imported, again: no reading changes, no rollup is rewritten."""
        before = list(DailyRollup.objects.order_by("pk").values_list("pk", flat=True))
        assert self.last is not None
        self._import(self.last)
        after = list(DailyRollup.objects.order_by("pk").values_list("pk", flat=True))
        assert before == after

    @rule(
        lo=st.integers(0, len(GAS_DAYS) - 1),
        n=st.integers(1, len(GAS_DAYS)),
        variant=st.integers(0, 2),
    )
    def deliver_gas(self, lo: int, n: int, variant: int) -> None:
        self._import(gas_document(GAS_DAYS[lo : lo + n], variant))

    @invariant()
    def rollups_equal_a_recomputation(self) -> None:
        assert stored() == recomputed()


_BUDGET = settings(
    max_examples=40,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.django_db(transaction=True)
def test_rollups_equal_a_recomputation_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("this run uses PostgreSQL: see the postgres variant")
    run_state_machine_as_test(RollupMachine, settings=_BUDGET)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rollups_equal_a_recomputation_postgres():
    run_state_machine_as_test(RollupMachine, settings=_BUDGET)


@pytest.mark.django_db
def test_gas_day_starting_one_second_after_midnight_counts_in_its_day():
    document_import(source=gas_document((date(2025, 11, 2),), 0), source_label="gas", now=NOW)
    (row,) = DailyRollup.objects.all()
    assert row.day == date(2025, 11, 2)
    assert row.readings == 1 and row.covered_seconds == 86400


@pytest.mark.django_db
def test_rebuild_command_restores_deleted_or_drifted_rollups(capsys):
    spec = DocSpec(
        series=(SeriesDef("UPINTEG01", "MRDEL60", 3600, 1),),
        days=(date(2025, 11, 1), date(2025, 11, 2)),
        variant=0,
        dup_variant=None,
        inner_dup=False,
        reverse_entries=False,
    )
    document_import(source=spec.document(), source_label="a", now=NOW)
    expected = stored()
    assert expected == recomputed()
    assert expected[0][next(iter(expected[0]))][1] in (24, 25)
    DailyRollup.objects.update(value_sum=0)
    MonthlyRollup.objects.all().delete()
    call_command("rollups_rebuild")
    assert stored() == expected
    assert "1 series" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_units_unknown_series_merged_into_its_twin_moves_its_totals(fixture_path):
    """reading_type_attach merges a series that arrived without units into its twin."""
    from ingest.models import MeterReading
    from ingest.readings import reading_type_attach

    twin_spec = DocSpec(
        series=(SeriesDef("UPINTEG01", "MRDEL60", 3600, 1),),
        days=(date(2025, 3, 8),),
        variant=0,
        dup_variant=None,
        inner_dup=False,
        reverse_entries=False,
    )
    # First the next day without its ReadingType entry (units unknown), then the twin.
    later = replace(twin_spec, days=(date(2025, 3, 9),)).document().decode()
    rt_entry_start = later.rfind("<entry>", 0, later.index("<ReadingType xmlns"))
    rt_entry_end = later.index("</entry>", rt_entry_start) + len("</entry>")
    without_units = later[:rt_entry_start] + later[rt_entry_end:]
    document_import(source=without_units.encode(), source_label="no units", now=NOW)
    document_import(source=twin_spec.document(), source_label="twin", now=NOW)
    assert MeterReading.objects.filter(reading_type__isnull=True).exists()
    assert MeterReading.objects.count() == 2
    reading_type = later[rt_entry_start:rt_entry_end]
    feed_doc = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><id>x</id>' + reading_type + "</feed>"
    ).encode()
    href = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/ReadingType/RT3600F1"
    assert reading_type_attach(href=href, source=feed_doc, now=NOW) == 1
    assert MeterReading.objects.count() == 1
    assert stored() == recomputed()
    assert {day for (_series, day) in stored()[0]} == {date(2025, 3, 8), date(2025, 3, 9)}
