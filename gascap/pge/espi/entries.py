"""An Atom entry, read whole once it has ended: its links (`self` is a resource's identity,
`up` its collection, `related` the rest), its `updated`, and the small resources in its
content (UsagePoint, MeterReading, ReadingType, LocalTimeParameters, usage summaries), added
to the document. An IntervalBlock's readings have streamed by then (`gascap.pge.espi.readings`).

Small resources are tolerant: a code that is absent, not a number or outside what the database
stores is None, never a refusal; customer data and unknown elements are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from lxml import etree

from gascap.pge.espi.bounds import (
    CODE_MAX,
    CODE_MIN,
    DURATION_MAX,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    START_MAX,
    START_MIN,
)
from gascap.pge.espi.records import (
    READING_TYPE_FIELDS,
    EspiDocument,
    Links,
    LocalTimeParametersInfo,
    MeterReadingInfo,
    ReadingTypeInfo,
    SummaryMeasurement,
    UsagePointInfo,
    UsageSummaryInfo,
)
from gascap.pge.espi.tags import ESPI, T_CONTENT, T_LINK, T_TITLE, T_UPDATED

_SUMMARY_RESOURCES = ("UsageSummary", "ElectricPowerUsageSummary")
# ReadingType codes stored in IntegerFields (uom, intervalLength, phase); the rest are smallint.
_WIDE_CODES = frozenset({"uom", "intervalLength", "phase"})


def entry_read(entry: etree._Element, doc: EspiDocument) -> tuple[Links, datetime | None]:
    """The entry's links and `updated`; its small resources are added to `doc`."""
    links = Links()
    resources: list[etree._Element] = []
    title = ""
    updated = None
    for child in entry:
        tag = child.tag
        if tag == T_LINK:
            rel = child.get("rel", "alternate")
            href = (child.get("href") or "").strip()
            if not href:
                continue
            if rel == "self":
                links.self_href = links.self_href or href
            elif rel == "up":
                links.up_href = links.up_href or href
            elif rel == "related":
                links.related.append(href)
        elif tag == T_CONTENT:
            resources.extend(c for c in child if isinstance(c.tag, str))
        elif tag == T_TITLE:
            title = (child.text or "").strip()
        elif tag == T_UPDATED:
            updated = atom_datetime(child.text)
    for resource in resources:
        _resource_add(doc, resource, links, title)
    return links, updated


@lru_cache(maxsize=1024)
def atom_datetime(text: str | None) -> datetime | None:
    """An Atom date-time as an aware UTC datetime; None when absent or unreadable.

    Some producers drop the offset or write a bare date (docs/espi-model.md §5): read as UTC.
    An unreadable value is no reason to refuse the readings, only to not order by it.
    Cached: a feed's entries share a handful of times, and each block keeps a reference.
    """
    text = (text or "").strip()
    if not text or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _resource_add(doc: EspiDocument, resource: etree._Element, links: Links, title: str) -> None:
    tag = resource.tag
    if not isinstance(tag, str) or not tag.startswith(ESPI):
        return  # customer data, Atom extras, no-namespace oddities: not ours
    name = tag[len(ESPI) :]
    href = links.self_href or ""
    if name == "IntervalBlock":
        return  # its readings already streamed
    data = _tree_dict(resource)
    if name == "ReadingType":
        doc.reading_types[href] = ReadingTypeInfo(href=href, codes=_reading_type_codes(data))
    elif name == "UsagePoint":
        existing = doc.usage_points.get(href)
        if existing is not None:  # PG&E 2016 repeats a UsagePoint entry: merge links
            existing.links.related.extend(links.related)
            return
        category = data.get("ServiceCategory")
        doc.usage_points[href] = UsagePointInfo(
            href=href,
            links=links,
            service_kind=_small(category, "kind") if isinstance(category, dict) else None,
            status=_small(data, "status"),
            title=title,
        )
    elif name == "MeterReading":
        existing_mr = doc.meter_readings.get(href)
        if existing_mr is not None:
            existing_mr.links.related.extend(links.related)
            return
        doc.meter_readings[href] = MeterReadingInfo(href=href, links=links)
    elif name == "LocalTimeParameters":
        doc.local_time_parameters[href] = LocalTimeParametersInfo(
            href=href,
            dst_start_rule=_text(data, "dstStartRule") or None,
            dst_end_rule=_text(data, "dstEndRule") or None,
            dst_offset=_code(data, "dstOffset"),
            tz_offset=_code(data, "tzOffset"),
        )
    elif name in _SUMMARY_RESOURCES:
        doc.usage_summaries.append(_summary(name, href, links, data))


def _summary(name: str, href: str, links: Links, data: dict[str, object]) -> UsageSummaryInfo:
    period = data.get("billingPeriod")
    period = period if isinstance(period, dict) else {}
    items = data.get("costAdditionalDetailLastPeriod", [])
    if isinstance(items, dict):
        items = [items]
    line_items = (
        [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    )
    return UsageSummaryInfo(
        href=href,
        links=links,
        resource=name,
        # Stored as a timestamp and an IntegerField: out of range is unusable (None).
        billing_start=_code(period, "start", low=START_MIN, high=START_MAX),
        billing_duration=_code(period, "duration", low=0, high=DURATION_MAX),
        bill_last_period=_code(data, "billLastPeriod"),
        bill_to_date=_code(data, "billToDate"),
        cost_additional_last_period=_code(data, "costAdditionalLastPeriod"),
        currency=_small(data, "currency"),
        commodity=_small(data, "commodity"),
        tariff_profile=_text(data, "tariffProfile"),
        read_cycle=_text(data, "readCycle"),
        # PG&E sends statusTimeStamp in milliseconds (docs/espi-model.md §5): kept as sent.
        status_timestamp=_code(data, "statusTimeStamp"),
        overall_consumption=_measurement(data.get("overallConsumptionLastPeriod")),
        line_items=line_items,
        fields=data,
    )


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _tree_dict(element: etree._Element) -> dict[str, object]:
    """A small resource as nested dicts of local names (repeated names become lists)."""
    out: dict[str, object] = {}
    for child in element:
        name = _local(child.tag)
        if not name:
            continue
        value: object = _tree_dict(child) if len(child) else (child.text or "").strip()
        if name in out:
            existing = out[name]
            if isinstance(existing, list):
                existing.append(value)
            else:
                out[name] = [existing, value]
        else:
            out[name] = value
    return out


def _code(
    data: dict[str, object], name: str, *, low: int = INT64_MIN, high: int = INT64_MAX
) -> int | None:
    """A code or amount as an int; None when absent, not a number or outside [low, high]."""
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str) or not value:
        return None
    try:
        number = int(value)
    except ValueError:
        try:
            exact = Decimal(value)  # fractional or exotic: keep what is exact enough
        except (InvalidOperation, ValueError):
            return None
        # Bounded before int(): "1e999999999" would otherwise build a billion-digit int.
        if not exact.is_finite() or not low <= exact <= high:
            return None
        number = int(exact)
    return number if low <= number <= high else None


def _small(data: dict[str, object], name: str) -> int | None:
    """A code stored in a SmallIntegerField."""
    return _code(data, name, low=CODE_MIN, high=CODE_MAX)


def _reading_type_codes(data: dict[str, object]) -> dict[str, int | None]:
    return {
        f: _code(data, f, low=INT32_MIN, high=INT32_MAX) if f in _WIDE_CODES else _small(data, f)
        for f in READING_TYPE_FIELDS
    }


def _text(data: dict[str, object], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _measurement(data: object) -> SummaryMeasurement | None:
    if not isinstance(data, dict):
        return None
    return SummaryMeasurement(
        value=_code(data, "value"),
        multiplier=_small(data, "powerOfTenMultiplier") or 0,
        uom=_code(data, "uom", low=INT32_MIN, high=INT32_MAX),
    )
