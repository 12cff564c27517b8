"""A tiny ESPI (Green Button) feed writer for the data-integrity tests.

Deliberately independent of `sandbox.feeds` and of `gascap.pge.espi`: a writer shared with the
code under test would agree with its bugs. It writes only what the integrity tests need: a
feed of UsagePoints, ReadingTypes, MeterReadings and one IntervalBlock per Pacific day (23, 24
or 25 hours long on DST days, as PG&E sends them: docs/espi-model.md §5), with readings in exactly
the order given, duplicates included. All ids are obviously synthetic.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
API_BASE = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"
SUBSCRIPTION = "SUBINTEGRITY1"
ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"


@dataclass(frozen=True)
class SeriesDef:
    """One MeterReading of one usage point with its ReadingType codes."""

    usage_point: str  # synthetic id, e.g. "UPINTEG01"
    meter_reading: str  # synthetic id, e.g. "MRDEL60"
    interval: int  # seconds
    flow_direction: int  # 1 delivered, 19 received
    uom: int = 72  # Wh
    multiplier: int = -3

    @property
    def usage_point_href(self) -> str:
        return f"{API_BASE}Subscription/{SUBSCRIPTION}/UsagePoint/{self.usage_point}"

    @property
    def meter_reading_href(self) -> str:
        return f"{self.usage_point_href}/MeterReading/{self.meter_reading}"

    @property
    def reading_type_href(self) -> str:
        return f"{API_BASE}ReadingType/RT{self.interval}F{self.flow_direction}"


# (start epoch s, duration s, value, quality or None, cost or None)
Row = tuple[int, int, int, int | None, int | None]


@dataclass
class Block:
    series: SeriesDef
    start: int
    duration: int
    rows: list[Row]


def day_bounds(day: date) -> tuple[int, int]:
    """UTC epoch seconds of a Pacific day's first and last instant (+1): 23/24/25 h apart."""
    first = datetime.combine(day, time.min, tzinfo=PACIFIC)
    after = datetime.combine(day + timedelta(days=1), time.min, tzinfo=PACIFIC)
    return int(first.timestamp()), int(after.timestamp())


def day_starts(day: date, interval: int) -> list[int]:
    first, after = day_bounds(day)
    return list(range(first, after, interval))


DEFAULT_UPDATED = "2025-01-01T00:00:00Z"


def _entry(
    self_href: str,
    up_href: str,
    content: str,
    related: Iterable[str] = (),
    updated: str | None = DEFAULT_UPDATED,
) -> str:
    links = [f'<link rel="self" href="{self_href}"/>', f'<link rel="up" href="{up_href}"/>']
    links += [f'<link rel="related" href="{href}"/>' for href in related]
    ident = zlib.crc32(self_href.encode())
    return (
        f"<entry><id>urn:uuid:00000000-0000-0000-0000-{ident:012d}</id>{''.join(links)}"
        "<title>integrity test</title><published>2025-01-01T00:00:00Z</published>"
        + (f"<updated>{updated}</updated>" if updated else "")
        + f"<content>{content}</content></entry>"
    )


def _reading(row: Row) -> str:
    start, duration, value, quality, cost = row
    parts = ["<IntervalReading>"]
    if cost is not None:
        parts.append(f"<cost>{cost}</cost>")
    if quality is not None:
        parts.append(f"<ReadingQuality><quality>{quality}</quality></ReadingQuality>")
    parts.append(
        f"<timePeriod><duration>{duration}</duration><start>{start}</start></timePeriod>"
        f"<value>{value}</value></IntervalReading>"
    )
    return "".join(parts)


def feed(
    blocks: Sequence[Block],
    *,
    reverse_entries: bool = False,
    updated: str | None = DEFAULT_UPDATED,
) -> bytes:
    """A feed holding every series the blocks name, then the blocks in the order given.

    `updated` is every entry's Atom `updated` (the snapshot's time; None: no `updated`)."""
    series: dict[str, SeriesDef] = {}
    for block in blocks:
        series.setdefault(block.series.meter_reading_href, block.series)
    entries: list[str] = []
    usage_points: dict[str, SeriesDef] = {}
    for s in series.values():
        usage_points.setdefault(s.usage_point_href, s)
    for href in usage_points:
        entries.append(
            _entry(
                href,
                f"{API_BASE}Subscription/{SUBSCRIPTION}/UsagePoint",
                f'<UsagePoint xmlns="{ESPI_NS}"><ServiceCategory><kind>0</kind>'
                "</ServiceCategory></UsagePoint>",
                (f"{href}/MeterReading",),
            )
        )
    reading_types: dict[str, SeriesDef] = {}
    for s in series.values():
        reading_types.setdefault(s.reading_type_href, s)
    for href, s in reading_types.items():
        entries.append(
            _entry(
                href,
                f"{API_BASE}ReadingType",
                f'<ReadingType xmlns="{ESPI_NS}"><accumulationBehaviour>4'
                "</accumulationBehaviour><commodity>1</commodity>"
                f"<flowDirection>{s.flow_direction}</flowDirection>"
                f"<intervalLength>{s.interval}</intervalLength><kind>12</kind>"
                f"<powerOfTenMultiplier>{s.multiplier}</powerOfTenMultiplier>"
                f"<uom>{s.uom}</uom></ReadingType>",
            )
        )
    for s in series.values():
        entries.append(
            _entry(
                s.meter_reading_href,
                f"{s.usage_point_href}/MeterReading",
                f'<MeterReading xmlns="{ESPI_NS}"/>',
                (f"{s.meter_reading_href}/IntervalBlock", s.reading_type_href),
            )
        )
    for number, block in enumerate(blocks):
        # Block ids are opaque at PG&E; numbering them keeps two copies of one day distinct.
        href = f"{block.series.meter_reading_href}/IntervalBlock/B{number}"
        body = "".join(_reading(row) for row in block.rows)
        entries.append(
            _entry(
                href,
                f"{block.series.meter_reading_href}/IntervalBlock",
                f'<IntervalBlock xmlns="{ESPI_NS}"><interval><duration>{block.duration}'
                f"</duration><start>{block.start}</start></interval>{body}</IntervalBlock>",
                updated=updated,
            )
        )
    if reverse_entries:
        entries.reverse()
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="{ATOM_NS}">'
        "<id>urn:uuid:00000000-0000-0000-0000-000000000000</id><title>integrity feed</title>"
        f"{''.join(entries)}</feed>"
    ).encode()
