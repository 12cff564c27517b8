"""The small ESPI resources the streaming parser collects, and the code tables that label them.

Interval readings are not here: they stream out of `gascap.pge.espi` as plain tuples (see
`ReadingRow`) because a 100-customer-year feed holds 3.5 million of them. Everything else in a
document (UsagePoints, MeterReadings, ReadingTypes, LocalTimeParameters, summaries) is small,
is collected whole and resolved after the document ends, whatever the entry order
(docs/espi-model.md §3).

Every code is kept as the raw integer PG&E sent: the ESPI enumerations are open
(docs/espi-model.md §4; PG&E gas uses a powerOfTenMultiplier of -8, which no table names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"

# (start, duration, value, cost, quality, tou, cpp, consumption_tier). start is epoch seconds,
# an int except in broken files (Eversource writes a fractional epoch), then a Decimal.
ReadingRow = tuple[
    int | Decimal, int, int, int | None, int | None, int | None, int | None, int | None
]

# ServiceCategory/kind: electricity is kind 0 but commodity 1 (docs/espi-model.md §4.1).
SERVICE_KINDS = {0: "electricity", 1: "gas", 2: "water", 3: "time", 4: "heat", 7: "rates"}
UOM_LABELS = {
    0: "",
    5: "A",
    29: "V",
    38: "W",
    42: "m3",
    61: "VA",
    63: "VAr",
    71: "VAh",
    72: "Wh",
    73: "VArh",
    80: "money",
    111: "count",
    119: "ft3",
    120: "ft3 compensated",
    128: "US gal",
    132: "BTU",
    134: "L",
    166: "m3 uncompensated",
    167: "m3 compensated",
    169: "therm",
}
FLOW_DIRECTIONS = {0: "n/a", 1: "delivered", 4: "net", 19: "received", 20: "total"}
COMMODITIES = {0: "n/a", 1: "electricity", 2: "electricity primary", 7: "natural gas", 9: "water"}
# UnitMultiplierKind (docs/espi-model.md §4.3): open, PG&E gas sends -8, which has no name.
MULTIPLIERS = {
    -12: "pico",
    -9: "nano",
    -6: "micro",
    -3: "milli",
    -2: "centi",
    -1: "deci",
    0: "none",
    1: "deca",
    2: "hecto",
    3: "kilo",
    6: "mega",
    9: "giga",
    12: "tera",
}
# accumulationBehaviour (§4.4): only 4 (delta) is consumption within the interval.
ACCUMULATIONS = {
    0: "n/a",
    1: "bulk quantity",
    2: "continuous cumulative",
    3: "cumulative",
    4: "delta",
    6: "indicating",
    9: "summation",
    10: "time delay",
    12: "instantaneous",
    13: "latching quantity",
    14: "bounded quantity",
}
# MeasurementKind (§4.6), the subset seen in samples.
MEASUREMENT_KINDS = {
    0: "n/a",
    3: "currency",
    4: "current",
    8: "demand",
    12: "energy",
    15: "frequency",
    37: "power",
    38: "power factor",
    54: "voltage",
    58: "volume",
}
# Other ReadingType codes (§4.7): the values PG&E and the samples use.
DATA_QUALIFIERS = {0: "n/a", 2: "average", 8: "maximum", 9: "minimum", 11: "nominal", 12: "normal"}
TIME_ATTRIBUTES = {0: "n/a", 8: "billing period", 11: "daily", 13: "monthly", 24: "weekly"}
MEASURING_PERIODS = {
    0: "n/a",
    1: "10 min",
    2: "15 min",
    3: "1 min",
    4: "24 h",
    5: "30 min",
    6: "5 min",
    7: "60 min",
}
PHASES = {0: "n/a", 129: "A-N", 224: "ABC", 225: "ABCN", 769: "S1-S2-N"}
CURRENCIES = {0: "other", 124: "CAD", 840: "USD", 978: "EUR"}
# QualityOfReading (§4.8): PG&E sends 17 (validated) and 19 (revenue quality) most often.
QUALITIES = {
    0: "valid",
    7: "manually edited",
    8: "estimated (reference day)",
    9: "estimated (interpolated)",
    10: "questionable",
    11: "derived",
    12: "projected",
    13: "mixed",
    14: "raw",
    15: "weather-normalised",
    16: "other",
    17: "validated",
    18: "verified",
    19: "revenue quality",
}

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


def uom_label(uom: int | None) -> str:
    """A short unit label for a UnitSymbolKind code; the code itself when unknown."""
    if uom is None:
        return ""
    return UOM_LABELS.get(uom, str(uom))


def code_label(table: dict[int, str], code: int | None) -> str:
    """ "label (code)" for display, so the raw code stays visible; the bare number when the
    (open) enumeration has no name for it; "" when absent."""
    if code is None:
        return ""
    label = table.get(code)
    return f"{label} ({code})" if label else str(code)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def reading_type_describe(
    *, uom: int | None, multiplier: int | None, flow_direction: int | None, interval: int | None
) -> str:
    """A ReadingType in words, e.g. "Wh x10⁻³ · delivered · 15 min" (the raw value times
    10^multiplier is in the unit; PG&E electric sends -3, gas -8)."""
    unit = UOM_LABELS.get(uom) if uom is not None else "unit unknown"
    unit = unit or f"uom {uom}"
    if multiplier:
        unit += " \u00d710" + str(multiplier).translate(_SUPERSCRIPT)
    parts = [unit]
    if flow_direction is not None:
        parts.append(FLOW_DIRECTIONS.get(flow_direction, f"flow {flow_direction}"))
    if interval:
        parts.append(duration_describe(interval))
    return " · ".join(parts)


def duration_describe(seconds: int) -> str:
    """900 -> "15 min", 3600 -> "1 h", 86400 -> "1 day" (ESPI intervalLength is seconds)."""
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


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
