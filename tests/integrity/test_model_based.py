"""docs/reliability.md test 69 (D-tests 42-44 as a state machine): deliveries, replays, corrections
and re-deliveries of older documents against `ingest.readings.document_import`, compared after
every step with a plain model: "the latest value per key by the snapshot's Atom `updated`
(ties: the later delivery)" plus the list of revisions that must exist, stale ones included
(an older snapshot processed after a newer one changes nothing and is recorded as stale,
once: docs/reliability.md test 44).

The documents are written by `tests.integrity.espi_writer`, which shares nothing with the
sandbox or the parser. They hold one or two usage points, delivered (flowDirection 1) and
received (19) series, hourly and 15-minute intervals, Pacific days including both 2025 DST
days (23 h and 25 h), overlapping day ranges, the same interval twice inside one document,
and values/qualities/costs from small sets so corrections (and non-corrections) happen often.
Snapshot times come from a small set too (half a second apart, so SQLite's text comparison
meets times with and without a fraction), or are missing (never stale, keeps the stored time).

Runs on SQLite (the portable merge) and, marked postgres, on PostgreSQL (COPY + one CTE
statement): both must agree with the model. Bounded: a few seconds per database.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

import pytest
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

from ingest.readings import document_import
from tests.integrity.conftest import (
    Key,
    Triple,
    readings_wipe,
    revision_order,
    stored_readings,
    stored_revisions_with_stale,
)
from tests.integrity.espi_writer import Block, Row, SeriesDef, day_bounds, day_starts, feed

SERIES = (
    SeriesDef("UPINTEG01", "MRDEL60", 3600, 1),
    SeriesDef("UPINTEG01", "MRREC60", 3600, 19),
    SeriesDef("UPINTEG02", "MRDEL15", 900, 1),
    SeriesDef("UPINTEG02", "MRDEL60", 3600, 1),  # shares its ReadingType with UPINTEG01's
)
# Two runs of three Pacific days around the 2025 transitions: spring forward on 03-09
# (23 h), fall back on 11-02 (25 h).
DAY_RUNS = (
    (date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 10)),
    (date(2025, 11, 1), date(2025, 11, 2), date(2025, 11, 3)),
)
DAY_RANGES = tuple(run[lo:hi] for run in DAY_RUNS for lo in range(3) for hi in range(lo + 1, 4))
VALUES = (100, 101, 102)
QUALITIES = (None, 17, 19)
COSTS = (None, 2500, 2600)
NOW = datetime(2025, 12, 1, tzinfo=UTC)
# Snapshot times (Atom `updated`) by index: 0.5 s apart, some with a fraction.
UPDATED = (
    "2025-01-01T00:00:00Z",
    "2025-01-01T00:00:00.5Z",
    "2025-01-01T00:00:01Z",
    "2025-01-02T00:00:00.25Z",
)


def _pick(seed: str) -> Triple:
    h = zlib.crc32(seed.encode())
    return (VALUES[h % 3], QUALITIES[(h // 3) % 3], COSTS[(h // 9) % 3])


def _triple(series: SeriesDef, start: int, variant: int) -> Triple:
    """A reading's value: the same for most variants, different for about a quarter of the
    keys in each variant (PG&E's later deliveries correct a few readings, docs/espi-model.md
    §4.8)."""
    key = f"{series.meter_reading_href}@{start}"
    if variant and zlib.crc32(f"{key}#{variant}".encode()) % 4 == 0:
        return _pick(f"{key}#{variant}")
    return _pick(key)


@dataclass(frozen=True)
class DocSpec:
    series: tuple[SeriesDef, ...]
    days: tuple[date, ...]
    variant: int
    dup_variant: int | None  # a second copy of the first block, with these values
    inner_dup: bool  # each block repeats its first interval at its end, value + 1
    reverse_entries: bool
    updated: int | None = 0  # index into UPDATED; None: the document says no `updated`

    def blocks(self) -> list[Block]:
        blocks = []
        for series in self.series:
            for day in self.days:
                first, after = day_bounds(day)
                rows: list[Row] = []
                for start in day_starts(day, series.interval):
                    value, quality, cost = _triple(series, start, self.variant)
                    rows.append((start, series.interval, value, quality, cost))
                if self.inner_dup:
                    start, duration, value, quality, cost = rows[0]
                    rows.append((start, duration, value + 1, quality, cost))
                blocks.append(Block(series, first, after - first, rows))
        if self.dup_variant is not None:
            head = blocks[0]
            rows = [
                (start, d, *_triple(head.series, start, self.dup_variant))
                for start, d, *_ in head.rows
            ]
            blocks.append(Block(head.series, head.start, head.duration, rows))
        return blocks

    def delivered(self) -> dict[Key, Triple]:
        """What the document says per key: in document order, the last copy wins."""
        out: dict[Key, Triple] = {}
        blocks = self.blocks()
        for block in reversed(blocks) if self.reverse_entries else blocks:
            s = block.series
            for start, duration, value, quality, cost in block.rows:
                out[(s.usage_point, s.meter_reading, start, duration)] = (value, quality, cost)
        return out

    def document(self) -> bytes:
        return feed(
            self.blocks(),
            reverse_entries=self.reverse_entries,
            updated=None if self.updated is None else UPDATED[self.updated],
        )


doc_specs = st.builds(
    DocSpec,
    series=st.lists(st.sampled_from(SERIES), min_size=1, max_size=3, unique=True).map(tuple),
    days=st.sampled_from(DAY_RANGES),
    variant=st.integers(0, 3),
    dup_variant=st.none() | st.integers(0, 3),
    inner_dup=st.booleans(),
    reverse_entries=st.booleans(),
    updated=st.none() | st.integers(0, len(UPDATED) - 1),
)
snapshot_times = st.none() | st.integers(0, len(UPDATED) - 1)


class ReadingStorage(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        readings_wipe()
        self.model: dict[Key, Triple] = {}
        self.stamps: dict[Key, int | None] = {}  # the snapshot each stored value came from
        self.revisions: list[tuple[Key, Triple, Triple, bool]] = []
        self.stale_seen: set[tuple[Key, Triple, int | None]] = set()
        self.docs: list[DocSpec] = []
        self.deliveries = 0

    def _deliver(self, spec: DocSpec) -> None:
        self.deliveries += 1
        result = document_import(
            source=spec.document(), source_label=f"delivery {self.deliveries}", now=NOW
        )
        new = updated = unchanged = stale = 0
        u = spec.updated
        for key, triple in spec.delivered().items():
            old = self.model.get(key)
            stored_u = self.stamps.get(key)
            if old is None:
                new += 1
            elif u is not None and stored_u is not None and u < stored_u:
                # An older snapshot: nothing changes; differing values are a stale revision,
                # recorded once however often that snapshot comes back.
                if triple != old:
                    stale += 1
                    if (key, triple, u) not in self.stale_seen:
                        self.stale_seen.add((key, triple, u))
                        self.revisions.append((key, old, triple, True))
                else:
                    unchanged += 1
                continue
            elif old != triple:
                updated += 1
                self.revisions.append((key, old, triple, False))
            else:
                unchanged += 1
            self.model[key] = triple
            self.stamps[key] = u if u is not None else stored_u
        assert (
            result.readings_new,
            result.readings_updated,
            result.readings_unchanged,
            result.readings_stale,
        ) == (new, updated, unchanged, stale)
        assert result.readings_skipped == 0
        assert result.missing_reading_types == []
        self.docs.append(spec)

    @rule(spec=doc_specs)
    def deliver(self, spec: DocSpec) -> None:
        self._deliver(spec)

    @precondition(lambda self: self.docs)
    @rule()
    def replay_last(self) -> None:
        """The same document again (PG&E re-sends): nothing new, nothing updated, no revision."""
        spec = self.docs[-1]
        revisions_before = len(stored_revisions_with_stale())
        result = document_import(source=spec.document(), source_label="replay", now=NOW)
        assert (result.readings_new, result.readings_updated) == (0, 0)
        # Keys a newer snapshot holds different values for stay stale; none is written.
        assert result.readings_unchanged + result.readings_stale == len(spec.delivered())
        assert len(stored_revisions_with_stale()) == revisions_before

    @precondition(lambda self: self.docs)
    @rule(which=st.integers(0, 50))
    def redeliver_older(self, which: int) -> None:
        """An older document arrives again (out of order): the latest delivery wins."""
        self._deliver(self.docs[which % len(self.docs)])

    @precondition(lambda self: self.docs)
    @rule(which=st.integers(0, 50), variant=st.integers(1, 3), updated=snapshot_times)
    def correct(self, which: int, variant: int, updated: int | None) -> None:
        """A correction of an earlier document: same series and days, some values changed,
        produced at some snapshot time (newer, equal or older than what is stored)."""
        spec = self.docs[which % len(self.docs)]
        self._deliver(replace(spec, variant=(spec.variant + variant) % 4, updated=updated))

    @invariant()
    def storage_equals_model(self) -> None:
        stored = stored_readings()
        assert len(stored) == len(self.model)
        assert stored == self.model
        expected = sorted(self.revisions, key=lambda r: (*revision_order(r[:3]), r[3]))
        assert stored_revisions_with_stale() == expected


# Bounded for the every-push tier: ~35 documents of up to ~1,000 readings per database.
_BUDGET = settings(
    max_examples=60,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _run() -> None:
    run_state_machine_as_test(ReadingStorage, settings=_BUDGET)


@pytest.mark.django_db(transaction=True)
def test_storage_matches_the_model_sqlite():
    """The portable merge (window-function dedupe, INSERT ... ON CONFLICT)."""
    if connection.vendor != "sqlite":
        pytest.skip("this run uses PostgreSQL: see the postgres variant")
    _run()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_storage_matches_the_model_postgres():
    """The PostgreSQL fast path (COPY, advisory locks, one CTE statement)."""
    _run()
