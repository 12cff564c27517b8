"""The streaming ESPI (Green Button) parser: interval readings out as they are read, the small
resources collected and linked after the document ends.

Memory stays flat whatever the document size: readings are cleared as soon as they are read
and consumed siblings are deleted, so a 800 MB feed never becomes a tree. Elements are matched
by `{namespace}localname`, never by prefix (PG&E has changed its prefixes, docs/espi-model.md §1.2).
A `feed` or a single `entry` root, a UTF-8 BOM, stray text, unknown elements and codes are
accepted. The XML parser itself comes from `gascap.pge.safexml` (R3: DOCTYPE refused, no
entities, no network); every malformed or hostile input raises `EspiRejected` (that module's
`XmlRejected`) with the line and column where the parser knows them.

Usage::

    stream = EspiStream(source)
    for block, rows in stream.batches():
        ...                         # block: BlockRef (links filled once its entry ended)
    series = stream.document_series()   # {block number: Series}, resolved after the end
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from itertools import islice
from operator import is_not, lt
from typing import IO

from lxml import etree

from gascap.pge.espi_links import resolve_series
from gascap.pge.espi_types import (
    ATOM_NS,
    ESPI_NS,
    READING_TYPE_FIELDS,
    BlockRef,
    EspiDocument,
    Links,
    LocalTimeParametersInfo,
    MeterReadingInfo,
    ReadingRow,
    ReadingTypeInfo,
    Series,
    SummaryMeasurement,
    UsagePointInfo,
    UsageSummaryInfo,
)
from gascap.pge.safexml import XmlRejected, espi_events, refuse_attribute_flood

__all__ = [
    "EspiDocument",
    "EspiRejected",
    "EspiStream",
    "ReadingRow",
    "ReadingTypeInfo",
    "Series",
    "espi_read",
    "resolve_series",
]

# The one error type for malformed or hostile ESPI input (line/column where known).
EspiRejected = XmlRejected

_A = "{" + ATOM_NS + "}"
_E = "{" + ESPI_NS + "}"
T_ENTRY = _A + "entry"
T_LINK = _A + "link"
T_CONTENT = _A + "content"
T_TITLE = _A + "title"
T_UPDATED = _A + "updated"
T_FEED = _A + "feed"
T_READING = _E + "IntervalReading"
T_BLOCK = _E + "IntervalBlock"
T_TIME_PERIOD = _E + "timePeriod"
T_START = _E + "start"
T_DURATION = _E + "duration"
T_VALUE = _E + "value"
T_COST = _E + "cost"
T_QUALITY_BOX = _E + "ReadingQuality"
T_QUALITY = _E + "quality"
T_TOU = _E + "tou"
T_CPP = _E + "cpp"
T_TIER = _E + "consumptionTier"

_SUMMARY_RESOURCES = ("UsageSummary", "ElectricPowerUsageSummary")

# The ranges a reading's fields must keep, found by fuzzing (tests/fuzz). The importer stores
# the start as a timestamp (so within 1970..9999), the duration in an IntegerField, value and
# cost in BigIntegerFields and the codes in SmallIntegerFields: a value outside is refused here
# with its line instead of overflowing mid-insert. Bounding *before* int() matters too: a start
# of "1e999999999" made int(Decimal) build a billion-digit number (minutes of CPU, GBs of RAM).
START_MIN = 0
START_MAX = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold
DURATION_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CODE_MIN, CODE_MAX = -(2**15), 2**15 - 1
# ReadingType codes stored in IntegerFields (uom, intervalLength, phase); the rest are smallint.
_WIDE_CODES = frozenset({"uom", "intervalLength", "phase"})
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_I64 = {"low": INT64_MIN, "high": INT64_MAX}
_I16 = {"low": CODE_MIN, "high": CODE_MAX}


def _int(
    text: str | None, *, what: str, element: etree._Element, low: int, high: int
) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        number = int(text)
    except ValueError:
        raise EspiRejected(
            "invalid", f"{what} {text[:40]!r} is not an integer", line=element.sourceline
        ) from None
    if not low <= number <= high:
        raise EspiRejected(
            "invalid", f"{what} {text[:40]!r} is out of range", line=element.sourceline
        )
    return number


def _start(text: str | None, element: etree._Element) -> int | Decimal | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        # Eversource writes a fractional epoch (docs/espi-model.md §5): keep it exactly.
        value = Decimal(text)
    except InvalidOperation:
        raise EspiRejected(
            "invalid", f"timePeriod start {text[:40]!r} is not a number", line=element.sourceline
        ) from None
    # Range first (a cheap comparison), int() after: see START_MIN.
    if not value.is_finite() or not START_MIN <= value <= START_MAX:
        raise EspiRejected(
            "invalid", f"timePeriod start {text[:40]!r} is out of range", line=element.sourceline
        )
    return int(value) if value == value.to_integral_value() else value


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


def _reading_type_codes(data: dict[str, object]) -> dict[str, int | None]:
    return {
        f: _code(
            data,
            f,
            low=INT32_MIN if f in _WIDE_CODES else CODE_MIN,
            high=INT32_MAX if f in _WIDE_CODES else CODE_MAX,
        )
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
        multiplier=_code(data, "powerOfTenMultiplier", low=CODE_MIN, high=CODE_MAX) or 0,
        uom=_code(data, "uom", low=INT32_MIN, high=INT32_MAX),
    )


_NOT_NONE = partial(is_not, None)
_ROW_FIELDS = ("start", "duration", "value", "cost", "quality", "tou", "cpp", "consumptionTier")
# (column, low, high) of a ReadingRow: start, duration, value, cost, quality, tou, cpp, tier.
_ROW_RANGES = (
    (0, START_MIN, START_MAX),
    (1, 1, DURATION_MAX),  # a zero or negative duration is no interval (and no reading key)
    (2, INT64_MIN, INT64_MAX),
    (3, INT64_MIN, INT64_MAX),
    (4, CODE_MIN, CODE_MAX),
    (5, CODE_MIN, CODE_MAX),
    (6, CODE_MIN, CODE_MAX),
    (7, CODE_MIN, CODE_MAX),
)


def _checked(batch: list[ReadingRow], element: etree._Element, block: BlockRef) -> list[ReadingRow]:
    """`batch`, after checking its ranges and noting the order of its starts on `block`.

    EspiRejected when a field is outside what the database stores (found by fuzzing: such a
    value overflowed mid-insert or, as a start, hung int()). Done per batch with min/max over
    transposed columns (C loops), not per reading: on a 3.5-million-reading feed per-reading
    comparisons cost more than 5 % of the import.
    """
    columns = tuple(zip(*batch, strict=True))
    field = _columns_out_of_range(columns)
    if field is not None:
        raise EspiRejected(
            "invalid",
            f"an IntervalReading {field} is out of range (in the readings ending here)",
            line=element.sourceline,
        )
    starts = columns[0]
    increasing = all(map(lt, starts, islice(starts, 1, None)))
    if block.last_start is not None and not starts[0] > block.last_start:
        increasing = False
    if block.first_start is None:
        block.first_start = starts[0]
    block.ordered = block.ordered and increasing
    block.last_start = starts[-1] if increasing else max(starts)
    return batch


def _columns_out_of_range(columns: tuple[tuple[object, ...], ...]) -> str | None:
    """The first field (of transposed reading columns) outside what the database stores."""
    for index, low, high in _ROW_RANGES:
        present: list[int] = list(filter(_NOT_NONE, columns[index]))  # type: ignore[arg-type]
        if present and (min(present) < low or max(present) > high):
            return _ROW_FIELDS[index]
    return None


class EspiStream:
    """One pass over one ESPI document. Iterate `batches()` once, then read `document`."""

    def __init__(self, source: IO[bytes] | str, *, batch_size: int = 4096) -> None:
        self._source = source
        self._batch_size = batch_size
        self.document = EspiDocument()
        self._finished = False

    def batches(self) -> Iterator[tuple[BlockRef, list[ReadingRow]]]:
        """Yield (block, readings) batches in document order; at most `batch_size` each."""
        doc = self.document
        batch: list[ReadingRow] = []
        block: BlockRef | None = None
        entry_blocks: list[BlockRef] = []
        first_entry = True
        size = self._batch_size
        skipped = 0
        since_trim = 0
        with espi_events(self._source, tag=(T_READING, T_BLOCK, T_ENTRY)) as events:
            for _event, element in events:
                tag = element.tag
                if tag == T_READING:
                    if block is None:
                        block = BlockRef(number=len(doc.blocks))
                        doc.blocks.append(block)
                        entry_blocks.append(block)
                    row = self._reading(element)
                    if row is None:
                        skipped += 1
                    else:
                        batch.append(row)
                    since_trim += 1
                    if since_trim >= 256:
                        # Drop the readings already read (cleared, but still nodes in the tree).
                        parent = element.getparent()
                        if parent is not None:
                            del parent[:-1]
                        since_trim = 0
                    if len(batch) >= size:
                        block.readings += len(batch)
                        yield block, _checked(batch, element, block)
                        batch = []
                elif tag == T_BLOCK:
                    refuse_attribute_flood(element)
                    # The readings that follow belong to another block (Eversource sends 36
                    # blocks in one entry).
                    if batch and block is not None:
                        block.readings += len(batch)
                        yield block, _checked(batch, element, block)
                        batch = []
                    block = None
                    since_trim = 0
                    element.clear()
                else:  # an entry ended: its links are known, small resources are read whole
                    refuse_attribute_flood(element)
                    parent = element.getparent()
                    if first_entry:
                        # The feed's own children (id, title, updated) come before its first
                        # entry and are trimmed after it: read the feed's `updated` now.
                        first_entry = False
                        if parent is not None and parent.tag == T_FEED:
                            doc.updated = atom_datetime(parent.findtext(T_UPDATED))
                    links, updated = self._entry(element)
                    for ref in entry_blocks:
                        ref.links = links
                        ref.updated = updated or doc.updated
                    entry_blocks = []
                    if batch and block is not None:
                        block.readings += len(batch)
                        yield block, _checked(batch, element, block)
                        batch = []
                    block = None
                    element.clear()
                    if parent is not None:
                        del parent[:-1]
            if batch and block is not None:
                block.readings += len(batch)
                yield block, _checked(batch, element, block)
        doc.readings_skipped = skipped
        self._finished = True

    def _reading(self, element: etree._Element) -> ReadingRow | None:
        """The fast path: texts collected, converted at once; anything odd takes the careful
        path below (fractional starts, missing fields, errors with their line)."""
        start = duration = value = cost = quality = tou = cpp = tier = None
        for child in element:
            tag = child.tag
            if tag == T_TIME_PERIOD:
                for part in child:
                    part_tag = part.tag  # lxml builds the tag string anew on each access
                    if part_tag == T_START:
                        start = part.text
                    elif part_tag == T_DURATION:
                        duration = part.text
            elif tag == T_VALUE:
                value = child.text
            elif tag == T_QUALITY_BOX:
                if quality is None:
                    for part in child:
                        if part.tag == T_QUALITY:
                            quality = part.text
            elif tag == T_TOU:
                tou = child.text
            elif tag == T_COST:
                cost = child.text
            elif tag == T_CPP:
                cpp = child.text
            elif tag == T_TIER:
                tier = child.text
        try:
            # int() accepts surrounding whitespace, rejects fractions and empty text.
            row = (
                int(start),  # type: ignore[arg-type]
                int(duration),  # type: ignore[arg-type]
                int(value),  # type: ignore[arg-type]
                None if cost is None else int(cost),
                None if quality is None else int(quality),
                None if tou is None else int(tou),
                None if cpp is None else int(cpp),
                None if tier is None else int(tier),
            )
        except (TypeError, ValueError):
            return self._reading_careful(element)
        # Ranges are checked per batch (`_batch_out_of_range`), not here: the hot path stays
        # free of per-reading comparisons.
        return row

    def _reading_careful(self, element: etree._Element) -> ReadingRow | None:
        start = duration = value = cost = quality = tou = cpp = tier = None
        for child in element:
            tag = child.tag
            if tag == T_VALUE:
                value = _int(child.text, what="IntervalReading value", element=child, **_I64)
            elif tag == T_TIME_PERIOD:
                for part in child:
                    if part.tag == T_START:
                        start = _start(part.text, part)
                    elif part.tag == T_DURATION:
                        # A zero or negative duration is no interval (and no reading key).
                        duration = _int(
                            part.text,
                            what="timePeriod duration",
                            element=part,
                            low=1,
                            high=DURATION_MAX,
                        )
            elif tag == T_COST:
                cost = _int(child.text, what="IntervalReading cost", element=child, **_I64)
            elif tag == T_QUALITY_BOX:
                if quality is None:
                    # Several codes may be sent; the first one is the reading's quality.
                    for part in child:
                        if part.tag == T_QUALITY:
                            quality = _int(part.text, what="ReadingQuality", element=part, **_I16)
            elif tag == T_TOU:
                tou = _int(child.text, what="tou", element=child, **_I16)
            elif tag == T_CPP:
                cpp = _int(child.text, what="cpp", element=child, **_I16)
            elif tag == T_TIER:
                tier = _int(child.text, what="consumptionTier", element=child, **_I16)
        if start is None or duration is None or value is None:
            return None
        return (start, duration, value, cost, quality, tou, cpp, tier)

    def _entry(self, entry: etree._Element) -> tuple[Links, datetime | None]:
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
            self._resource(resource, links, title)
        return links, updated

    def _resource(self, resource: etree._Element, links: Links, title: str) -> None:
        tag = resource.tag
        if not isinstance(tag, str) or not tag.startswith(_E):
            return  # customer data, Atom extras, no-namespace oddities: not ours
        name = tag[len(_E) :]
        doc = self.document
        href = links.self_href or ""
        if name == "IntervalBlock":
            return  # its readings already streamed
        data = _tree_dict(resource)
        if name == "ReadingType":
            codes = _reading_type_codes(data)
            doc.reading_types[href] = ReadingTypeInfo(href=href, codes=codes)
        elif name == "UsagePoint":
            category = data.get("ServiceCategory")
            kind = (
                _code(category, "kind", low=CODE_MIN, high=CODE_MAX)
                if isinstance(category, dict)
                else None
            )
            existing = doc.usage_points.get(href)
            if existing is not None:  # PG&E 2016 repeats a UsagePoint entry: merge links
                existing.links.related.extend(links.related)
                return
            doc.usage_points[href] = UsagePointInfo(
                href=href,
                links=links,
                service_kind=kind,
                status=_code(data, "status", low=CODE_MIN, high=CODE_MAX),
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
            doc.usage_summaries.append(self._summary(name, href, links, data))

    @staticmethod
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
            currency=_code(data, "currency", low=CODE_MIN, high=CODE_MAX),
            commodity=_code(data, "commodity", low=CODE_MIN, high=CODE_MAX),
            tariff_profile=_text(data, "tariffProfile"),
            read_cycle=_text(data, "readCycle"),
            # PG&E sends statusTimeStamp in milliseconds (docs/espi-model.md §5): kept as sent.
            status_timestamp=_code(data, "statusTimeStamp"),
            overall_consumption=_measurement(data.get("overallConsumptionLastPeriod")),
            line_items=line_items,
            fields=data,
        )

    # --- resolution, after the document ended ----------------------------------------------

    def document_series(self) -> dict[int, Series]:
        """Link every block to its usage point, meter reading and reading type."""
        if not self._finished:
            raise RuntimeError("document_series() needs batches() to have run to the end")
        return resolve_series(self.document)


def espi_read(
    source: IO[bytes] | str,
) -> tuple[EspiDocument, dict[int, Series], list[tuple[int, ReadingRow]]]:
    """Read a whole (small) document: (document, series by block, [(block no, row), …])."""
    stream = EspiStream(source)
    rows = [(block.number, row) for block, batch in stream.batches() for row in batch]
    return stream.document, stream.document_series(), rows
