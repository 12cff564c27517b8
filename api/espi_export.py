"""One usage point's readings as an ESPI (Green Button) Atom feed, streamed.

The feed holds the UsagePoint, one ReadingType and one MeterReading per series and one
IntervalBlock per series and local day, with the hrefs gascap stored (the self links PG&E
sent), so importing the export (`manage.py import_espi`) gives back the same usage point,
series, readings, units, quality and cost. Elements follow the ESPI v3.3 schema's order
(tests/fixtures/espi-schema-v3.3, docs/espi-model.md §2.1); values are the raw integers as
stored (never rescaled), times epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet

from ingest.models import IntervalReading, MeterReading, ReadingType, UsagePoint

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
# ReadingType children in the v3.3 schema's sequence, with the model field of each.
READING_TYPE_ORDER = (
    ("accumulationBehaviour", "accumulation_behaviour"),
    ("commodity", "commodity"),
    ("consumptionTier", "consumption_tier"),
    ("currency", "currency"),
    ("dataQualifier", "data_qualifier"),
    ("defaultQuality", "default_quality"),
    ("flowDirection", "flow_direction"),
    ("intervalLength", "interval_length"),
    ("kind", "kind"),
    ("phase", "phase"),
    ("powerOfTenMultiplier", "power_of_ten_multiplier"),
    ("timeAttribute", "time_attribute"),
    ("tou", "tou"),
    ("uom", "uom"),
    ("cpp", "cpp"),
    ("measuringPeriod", "measuring_period"),
)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parent(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[0]


def _entry(*, href: str, up: str, related: list[str], title: str, now: str, content: str) -> str:
    links = [f'<link rel="self" href={quoteattr(href)}/>', f'<link rel="up" href={quoteattr(up)}/>']
    links += [f'<link rel="related" href={quoteattr(target)}/>' for target in related]
    return (
        f"<entry><id>{escape(href)}</id>{''.join(links)}<title>{escape(title)}</title>"
        f"<published>{now}</published><updated>{now}</updated>"
        f"<content>{content}</content></entry>\n"
    )


def _reading_type(rt: ReadingType) -> str:
    parts = []
    for element, field in READING_TYPE_ORDER:
        value = getattr(rt, field)
        if value is not None:
            parts.append(f"<espi:{element}>{int(value)}</espi:{element}>")
    return f"<espi:ReadingType>{''.join(parts)}</espi:ReadingType>"


def _reading(row: tuple[Any, ...]) -> str:
    start, duration, value, cost, quality, tou, cpp, tier = row
    parts = ["<espi:IntervalReading>"]
    if cost is not None:
        parts.append(f"<espi:cost>{cost}</espi:cost>")
    if quality is not None:
        parts.append(
            f"<espi:ReadingQuality><espi:quality>{quality}</espi:quality></espi:ReadingQuality>"
        )
    parts.append(
        f"<espi:timePeriod><espi:duration>{duration}</espi:duration>"
        f"<espi:start>{int(start.timestamp())}</espi:start></espi:timePeriod>"
        f"<espi:value>{value}</espi:value>"
    )
    if tier is not None:
        parts.append(f"<espi:consumptionTier>{tier}</espi:consumptionTier>")
    if tou is not None:
        parts.append(f"<espi:tou>{tou}</espi:tou>")
    if cpp is not None:
        parts.append(f"<espi:cpp>{cpp}</espi:cpp>")
    parts.append("</espi:IntervalReading>")
    return "".join(parts)


def _block(series: MeterReading, rows: list[tuple[Any, ...]], now: str) -> str:
    first = int(rows[0][0].timestamp())
    last = max(int(row[0].timestamp()) + row[1] for row in rows)
    href = f"{series.href.rstrip('/')}/IntervalBlock/{first}"
    content = (
        f"<espi:IntervalBlock><espi:interval><espi:duration>{last - first}</espi:duration>"
        f"<espi:start>{first}</espi:start></espi:interval>"
        + "".join(_reading(row) for row in rows)
        + "</espi:IntervalBlock>"
    )
    return _entry(
        href=href, up=_parent(href), related=[], title="IntervalBlock", now=now, content=content
    )


def espi_document(*, point: UsagePoint, query: QuerySet[IntervalReading]) -> Iterator[str]:
    """The feed, a few entries at a time."""
    now = _stamp(datetime.now(UTC))
    zone = ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)
    yield (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM}" xmlns:espi="{ESPI}">'
        f"<id>urn:gascap:export:usage-point:{point.pk}</id><title>gascap export</title>"
        f"<updated>{now}</updated>\n"
    )
    series_list = list(
        MeterReading.objects.filter(usage_point=point).select_related("reading_type").order_by("pk")
    )
    kind = (
        f"<espi:ServiceCategory><espi:kind>{point.service_kind}</espi:kind></espi:ServiceCategory>"
        if point.service_kind is not None
        else ""
    )
    status = f"<espi:status>{point.status}</espi:status>" if point.status is not None else ""
    yield _entry(
        href=point.href,
        up=_parent(point.href),
        related=[f"{point.href.rstrip('/')}/MeterReading"],
        title="UsagePoint",
        now=now,
        content=f"<espi:UsagePoint>{kind}{status}</espi:UsagePoint>",
    )
    for series in series_list:
        rt = series.reading_type
        rt_href = rt.href if rt is not None else series.reading_type_href
        if rt is not None:
            yield _entry(
                href=rt.href,
                up=_parent(rt.href),
                related=[],
                title="ReadingType",
                now=now,
                content=_reading_type(rt),
            )
        related = [f"{series.href.rstrip('/')}/IntervalBlock"] + ([rt_href] if rt_href else [])
        yield _entry(
            href=series.href,
            up=f"{point.href.rstrip('/')}/MeterReading",
            related=related,
            title="MeterReading",
            now=now,
            content="<espi:MeterReading/>",
        )
        rows = (
            query.filter(meter_reading=series)
            .order_by("start", "duration")
            .values_list(
                "start", "duration", "value", "cost", "quality", "tou", "cpp", "consumption_tier"
            )
        )
        block: list[tuple[Any, ...]] = []
        day = None
        for row in rows.iterator(chunk_size=5000):
            row_day = row[0].astimezone(zone).date()
            if block and row_day != day:
                yield _block(series, block, now)
                block = []
            day = row_day
            block.append(row)
        if block:
            yield _block(series, block, now)
    yield "</feed>\n"
