"""The ESPI code tables and how a code reads to a person: "label (code)", units, durations.

Every code is kept as the raw integer PG&E sent: the ESPI enumerations are open
(docs/espi-model.md §4; PG&E gas uses a powerOfTenMultiplier of -8, which no table names), so
a code a table lacks shows as its number.
"""

from __future__ import annotations

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
