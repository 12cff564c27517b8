"""The records the streaming parser hands out: the small ESPI resources, collected whole, and
the shape of an interval reading.

Interval readings are plain tuples (`ReadingRow`) because a 100-customer-year feed holds 3.5
million of them. Everything else in a document (UsagePoints, MeterReadings, ReadingTypes,
LocalTimeParameters, summaries) is small, is collected whole and resolved after the document
ends, whatever the entry order (docs/espi-model.md §3). Codes stay the raw integers PG&E sent
(their labels: `gascap.pge.espi.codes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# (start, duration, value, cost, quality, tou, cpp, consumption_tier). start is epoch seconds,
# an int except in broken files (Eversource writes a fractional epoch), then a Decimal.
ReadingRow = tuple[
    int | Decimal, int, int, int | None, int | None, int | None, int | None, int | None
]

# ReadingType fields, in the order they form a series' identity. The schema makes all optional.
READING_TYPE_FIELDS: tuple[str, ...] = (
    "uom",
    "powerOfTenMultiplier",
    "flowDirection",
    "kind",
    "intervalLength",
    "accumulationBehaviour",
    "commodity",
    "currency",
    "dataQualifier",
    "defaultQuality",
    "timeAttribute",
    "measuringPeriod",
    "phase",
    "tou",
    "cpp",
    "consumptionTier",
)


@dataclass(slots=True)
class Links:
    """An entry's Atom links: `self` is the resource's identity, `up` its collection."""

    self_href: str | None = None
    up_href: str | None = None
    related: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ReadingTypeInfo:
    href: str
    codes: dict[str, int | None]

    @property
    def uom(self) -> int | None:
        return self.codes.get("uom")

    @property
    def multiplier(self) -> int:
        # An absent multiplier means 10^0 (the schema default).
        return self.codes.get("powerOfTenMultiplier") or 0

    @property
    def flow_direction(self) -> int | None:
        return self.codes.get("flowDirection")

    @property
    def signature(self) -> str:
        """The canonical text of every identity field: equal signatures, same series units."""
        return ";".join(f"{name}={self.codes.get(name)}" for name in READING_TYPE_FIELDS)


@dataclass(slots=True)
class UsagePointInfo:
    href: str
    links: Links
    service_kind: int | None = None
    status: int | None = None
    title: str = ""


@dataclass(slots=True)
class MeterReadingInfo:
    href: str
    links: Links


@dataclass(slots=True)
class LocalTimeParametersInfo:
    href: str
    dst_start_rule: str | None
    dst_end_rule: str | None
    dst_offset: int | None
    tz_offset: int | None


@dataclass(slots=True)
class SummaryMeasurement:
    value: int | None
    multiplier: int
    uom: int | None

    @property
    def scaled(self) -> Decimal | None:
        return None if self.value is None else Decimal(self.value).scaleb(self.multiplier)


@dataclass(slots=True)
class UsageSummaryInfo:
    """A UsageSummary or ElectricPowerUsageSummary. Money fields are in 10^-5 of `currency`."""

    href: str
    links: Links
    resource: str
    billing_start: int | None
    billing_duration: int | None
    bill_last_period: int | None
    bill_to_date: int | None
    cost_additional_last_period: int | None
    currency: int | None
    commodity: int | None
    tariff_profile: str
    read_cycle: str
    status_timestamp: int | None
    overall_consumption: SummaryMeasurement | None
    line_items: list[dict[str, object]]
    fields: dict[str, object]


@dataclass(slots=True)
class BlockRef:
    """The entry an IntervalBlock came in; its links are known only once the entry ends."""

    number: int
    links: Links = field(default_factory=Links)
    readings: int = 0  # rows yielded for this block
    # The span of the block's starts, and whether they came strictly increasing: with every
    # block ordered and the blocks of a series not overlapping, no key repeats in the
    # document and the storage can skip its de-duplication.
    first_start: int | Decimal | None = None
    last_start: int | Decimal | None = None
    ordered: bool = True
    # The Atom `updated` of the block's entry (else of the feed): when PG&E produced this
    # snapshot. The storage keeps the latest by it (docs/espi.md, "Out-of-order deliveries").
    updated: datetime | None = None

    @property
    def meter_reading_href(self) -> str | None:
        # `up` is `{MeterReading self}/IntervalBlock`; without it (Opower) the block's self
        # href minus its last segment gives the same collection (docs/espi-model.md §3).
        collection = self.links.up_href
        if not collection and self.links.self_href:
            collection = self.links.self_href.rstrip("/").rsplit("/", 1)[0]
        if not collection:
            return None
        collection = collection.rstrip("/")
        if collection.endswith("/IntervalBlock"):
            return collection[: -len("/IntervalBlock")]
        return collection


@dataclass(slots=True)
class Series:
    """One resolved meter-reading series: where a block's readings belong."""

    usage_point_href: str
    meter_reading_href: str
    reading_type_href: str | None
    reading_type: ReadingTypeInfo | None


@dataclass(slots=True)
class EspiDocument:
    """Everything small in a document, available after the readings have streamed."""

    usage_points: dict[str, UsagePointInfo] = field(default_factory=dict)
    meter_readings: dict[str, MeterReadingInfo] = field(default_factory=dict)
    reading_types: dict[str, ReadingTypeInfo] = field(default_factory=dict)
    local_time_parameters: dict[str, LocalTimeParametersInfo] = field(default_factory=dict)
    usage_summaries: list[UsageSummaryInfo] = field(default_factory=list)
    blocks: list[BlockRef] = field(default_factory=list)
    readings_skipped: int = 0
    # The feed's own Atom `updated` (the fallback for entries without one).
    updated: datetime | None = None
