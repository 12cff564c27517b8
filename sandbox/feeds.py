"""PG&E-shaped usage feeds and single usage resources (the access-control documents are in
`sandbox.access_xml`).

Written as text on purpose, not with gascap's XML code: a counterpart that shares our writer
or parser would agree with our bugs. The shape follows PG&E's SMD files
(pge_smd_2019_*.xml, pge_smd_2020_gas_*.xml): Atom under prefix `ns1`, ESPI under `ns0`,
re-declared on entries and resources; LocalTimeParameters and ReadingType entries come before
the UsagePoint (docs/espi-model.md §3). Timestamps and ids derive from the request, never from
the wall clock, so the same request gives the same bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from xml.sax.saxutils import escape, quoteattr

from sandbox.demo import DemoCustomer, SeriesSpec, UsagePointSpec
from sandbox.readings import day_blocks, local_midnight

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOCAL_TIME_PARAMETERS_ID = "1"
_ID_NAMESPACE = uuid.UUID("6f3e1c52-6a51-4c55-9a8e-5b1f0d2c7a10")

# PG&E's tou codes and names (docs/espi-model.md §2.1), sent as a ProgramIdMappings entry.
TOU_NAMES = (
    (1, "SPK", "Summer Peak"),
    (2, "SOP", "Summer Off-Peak"),
    (3, "SPP", "Summer Partial Peak"),
    (4, "WPK", "Winter Peak"),
    (5, "WPP", "Winter Partial Peak"),
    (6, "WOP", "Winter Off-Peak"),
    (7, "MPK", "Spring Peak"),
    (8, "MOP", "Spring Off-Peak"),
    (9, "MXO", "Spring Super Off-Peak"),
)


@dataclass(frozen=True)
class FeedPart:
    """One usage point of one customer to include in a feed."""

    customer: DemoCustomer
    usage_point: UsagePointSpec


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _entry_id(self_href: str, stamp: int) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{self_href}#{stamp}"))


def _link(href: str, rel: str) -> str:
    return (
        f"        <ns1:link href={quoteattr(href)} rel={quoteattr(rel)} \n"
        f'            xmlns:xsi="{XSI}" xsi:type="ns1:linkType"/>\n'
    )


def atom_entry(
    *,
    self_href: str,
    up_href: str,
    related: Iterable[str] = (),
    title: str,
    stamp: int,
    content: str,
) -> str:
    links = _link(up_href, "up") + _link(self_href, "self")
    links += "".join(_link(href, "related") for href in related)
    when = _iso(stamp)
    return (
        f'    <ns1:entry xmlns:ns1="{ATOM}">\n'
        f'        <ns1:id xmlns:xsi="{XSI}" xsi:type="ns1:idType">'
        f"{_entry_id(self_href, stamp)}</ns1:id>\n"
        f"{links}"
        f'        <ns1:title type="text" \n'
        f'            xmlns:xsi="{XSI}" xsi:type="ns1:textType">{escape(title)}</ns1:title>\n'
        f'        <ns1:published xmlns:xsi="{XSI}" xsi:type="ns1:dateTimeType">{when}'
        f"</ns1:published>\n"
        f'        <ns1:updated xmlns:xsi="{XSI}" xsi:type="ns1:dateTimeType">{when}'
        f"</ns1:updated>\n"
        f'        <ns1:content xmlns:xsi="{XSI}" xsi:type="ns1:contentType">\n'
        f"{content}"
        f"        </ns1:content>\n"
        f"    </ns1:entry>\n"
    )


def _fields(resource: str, fields: Iterable[tuple[str, object]], indent: int = 12) -> str:
    pad = " " * indent
    body = "".join(
        f"{pad}    <ns0:{name}>{escape(str(value))}</ns0:{name}>\n" for name, value in fields
    )
    return f'{pad}<ns0:{resource} xmlns:ns0="{ESPI}">\n{body}{pad}</ns0:{resource}>\n'


class Hrefs:
    """The canonical PG&E URL tree under one API base (docs/espi-model.md §3)."""

    def __init__(self, api_base: str) -> None:
        self.base = api_base if api_base.endswith("/") else api_base + "/"

    def ltp(self) -> str:
        return f"{self.base}LocalTimeParameters/{LOCAL_TIME_PARAMETERS_ID}"

    def reading_type(self, series: SeriesSpec) -> str:
        return f"{self.base}ReadingType/{series.reading_type_id}"

    def usage_points(self, subscription_id: str) -> str:
        return f"{self.base}Subscription/{subscription_id}/UsagePoint"

    def usage_point(self, subscription_id: str, usage_point: UsagePointSpec) -> str:
        return f"{self.usage_points(subscription_id)}/{usage_point.usage_point_id}"

    def meter_reading(self, sid: str, usage_point: UsagePointSpec, series: SeriesSpec) -> str:
        return f"{self.usage_point(sid, usage_point)}/MeterReading/{series.meter_reading_id}"

    def authorization(self, subscription_id: str | None = None) -> str:
        tail = f"/{subscription_id}" if subscription_id else ""
        return f"{self.base}Authorization{tail}"

    def subscription(self, subscription_id: str) -> str:
        """The Authorization's `resourceURI` (PG&E's 2015 sample: `.../resource/Subscription/0`)."""
        return f"{self.base}Subscription/{subscription_id}"

    def subscription_batch(self, subscription_id: str) -> str:
        return f"{self.base}Batch/Subscription/{subscription_id}"

    def bulk(self, bulk_id: str) -> str:
        return f"{self.base}Batch/Bulk/{bulk_id}"


def local_time_parameters_entry(hrefs: Hrefs, stamp: int) -> str:
    # PG&E's Pacific rules: second Sunday of March / first Sunday of November at 02:00.
    content = _fields(
        "LocalTimeParameters",
        (
            ("dstEndRule", "B40E2000"),
            ("dstOffset", 3600),
            ("dstStartRule", "360E2000"),
            ("tzOffset", -28800),
        ),
    )
    return atom_entry(
        self_href=hrefs.ltp(),
        up_href=f"{hrefs.base}LocalTimeParameters",
        title="DST For Pacific Timezone",
        stamp=stamp,
        content=content,
    )


def reading_type_entry(hrefs: Hrefs, series: SeriesSpec, stamp: int) -> str:
    content = _fields(
        "ReadingType",
        (
            ("accumulationBehaviour", 4),
            ("commodity", series.commodity),
            ("dataQualifier", 12),
            ("defaultQuality", 17),
            ("flowDirection", series.flow_direction),
            ("intervalLength", series.interval),
            ("kind", 12),
            ("powerOfTenMultiplier", series.multiplier),
            ("timeAttribute", series.time_attribute),
            ("uom", series.uom),
            ("measuringPeriod", series.measuring_period),
        ),
    )
    return atom_entry(
        self_href=hrefs.reading_type(series),
        up_href=f"{hrefs.base}ReadingType",
        title="Type of Meter Reading Data",
        stamp=stamp,
        content=content,
    )


def usage_point_entry(hrefs: Hrefs, part: FeedPart, stamp: int) -> str:
    sid, up = part.customer.subscription_id, part.usage_point
    self_href = hrefs.usage_point(sid, up)
    content = (
        f'            <ns0:UsagePoint xmlns:ns0="{ESPI}">\n'
        f"                <ns0:ServiceCategory>\n"
        f"                    <ns0:kind>{up.service_kind}</ns0:kind>\n"
        f"                </ns0:ServiceCategory>\n"
        f"            </ns0:UsagePoint>\n"
    )
    return atom_entry(
        self_href=self_href,
        up_href=hrefs.usage_points(sid),
        related=(f"{self_href}/MeterReading", f"{self_href}/UsageSummary", hrefs.ltp()),
        title="Green Button Data File",
        stamp=stamp,
        content=content,
    )


def meter_reading_entry(hrefs: Hrefs, part: FeedPart, series: SeriesSpec, stamp: int) -> str:
    sid, up = part.customer.subscription_id, part.usage_point
    self_href = hrefs.meter_reading(sid, up, series)
    return atom_entry(
        self_href=self_href,
        up_href=f"{hrefs.usage_point(sid, up)}/MeterReading",
        related=(f"{self_href}/IntervalBlock", hrefs.reading_type(series), hrefs.ltp()),
        title="Green Button Data File",
        stamp=stamp,
        content=f'            <ns0:MeterReading xmlns:ns0="{ESPI}"/>\n',
    )


def interval_block_entries(
    hrefs: Hrefs, part: FeedPart, series: SeriesSpec, day: date, *, today: date
) -> Iterator[str]:
    collection = f"{hrefs.meter_reading(part.customer.subscription_id, part.usage_point, series)}"
    collection += "/IntervalBlock"
    for block in day_blocks(part.customer, part.usage_point, series, day, today=today):
        readings = []
        for r in block.readings:
            tou = f"                    <ns0:tou>{r.tou}</ns0:tou>\n" if r.tou is not None else ""
            readings.append(
                "                <ns0:IntervalReading>\n"
                "                    <ns0:ReadingQuality>\n"
                f"                        <ns0:quality>{r.quality}</ns0:quality>\n"
                "                    </ns0:ReadingQuality>\n"
                "                    <ns0:timePeriod>\n"
                f"                        <ns0:duration>{r.duration}</ns0:duration>\n"
                f"                        <ns0:start>{r.start}</ns0:start>\n"
                "                    </ns0:timePeriod>\n"
                f"                    <ns0:value>{r.value}</ns0:value>\n"
                f"{tou}"
                "                </ns0:IntervalReading>\n"
            )
        content = (
            f'            <ns0:IntervalBlock xmlns:ns0="{ESPI}">\n'
            "                <ns0:interval>\n"
            f"                    <ns0:duration>{block.duration}</ns0:duration>\n"
            f"                    <ns0:start>{block.start}</ns0:start>\n"
            "                </ns0:interval>\n"
            f"{''.join(readings)}"
            "            </ns0:IntervalBlock>\n"
        )
        yield atom_entry(
            self_href=f"{collection}/{block.start}",
            up_href=collection,
            title="Green Button Data File",
            stamp=block.start + block.duration,
            content=content,
        )


def program_id_mappings_entry(hrefs: Hrefs, stamp: int) -> str:
    mappings = "".join(
        "                <ns0:programIdMapping>\n"
        "                    <ns0:tOUorCPPorConsumptionTier>tou</ns0:tOUorCPPorConsumptionTier>\n"
        f"                    <ns0:code>{code}</ns0:code>\n"
        f"                    <ns0:name>{name}</ns0:name>\n"
        f"                    <ns0:note>{escape(note)}</ns0:note>\n"
        "                </ns0:programIdMapping>\n"
        for code, name, note in TOU_NAMES
    )
    content = (
        f'            <ns0:ProgramIdMappings xmlns:ns0="{ESPI}">\n{mappings}'
        "            </ns0:ProgramIdMappings>\n"
    )
    return atom_entry(
        self_href=f"{hrefs.base}ProgramIdMapping/1",
        up_href=f"{hrefs.base}ProgramIdMapping",
        title="Program Id Mappings",
        stamp=stamp,
        content=content,
    )


def feed_open(*, self_href: str, stamp: int, key: str) -> str:
    return (
        f'<ns1:feed xmlns:ns0="{ESPI}" \n    xmlns:ns1="{ATOM}">\n'
        f'    <ns1:id xmlns:ns1="{ATOM}">{_entry_id(self_href + "?" + key, stamp)}</ns1:id>\n'
        f'    <ns1:title xmlns:ns1="{ATOM}" type="text">Green Button Usage Feed</ns1:title>\n'
        f'    <ns1:updated xmlns:ns1="{ATOM}">{_iso(stamp)}</ns1:updated>\n'
        f'    <ns1:link xmlns:ns1="{ATOM}" href={quoteattr(self_href)} rel="self"/>\n'
    )


FEED_CLOSE = "</ns1:feed>\n"


def usage_feed_chunks(
    *, api_base: str, self_href: str, parts: list[FeedPart], days: list[date], today: date
) -> Iterator[bytes]:
    """A usage feed as encoded chunks (a year of 15-minute data is never one string).

    The stamp (published/updated) is local midnight of `today`: stable for the same request
    on the same day, which is when PG&E's data is regenerated anyway.
    """
    hrefs = Hrefs(api_base)
    stamp = local_midnight(today)
    key = f"{days[0]}..{days[-1]}" if days else "empty"
    yield feed_open(self_href=self_href, stamp=stamp, key=key).encode()
    yield local_time_parameters_entry(hrefs, stamp).encode()
    for part in parts:
        seen: set[str] = set()
        for series in part.usage_point.series:
            if series.reading_type_id not in seen:
                seen.add(series.reading_type_id)
                yield reading_type_entry(hrefs, series, stamp).encode()
        yield usage_point_entry(hrefs, part, stamp).encode()
        for series in part.usage_point.series:
            yield meter_reading_entry(hrefs, part, series, stamp).encode()
        for series in part.usage_point.series:
            for day in days:
                for entry in interval_block_entries(hrefs, part, series, day, today=today):
                    yield entry.encode()
    yield program_id_mappings_entry(hrefs, stamp).encode()
    yield FEED_CLOSE.encode()


def simple_feed(*, self_href: str, stamp: int, entries: Iterable[str]) -> bytes:
    return (
        feed_open(self_href=self_href, stamp=stamp, key="") + "".join(entries) + FEED_CLOSE
    ).encode()


def as_root_entry(entry: str) -> bytes:
    """A single entry as a document root (what a GET on one resource returns)."""
    return entry.encode()


def usage_point_feed(*, api_base: str, customer: DemoCustomer, stamp: int) -> bytes:
    """`Subscription/{SID}/UsagePoint`: the customer's UsagePoint entries."""
    hrefs = Hrefs(api_base)
    entries = [
        usage_point_entry(hrefs, FeedPart(customer, up), stamp) for up in customer.usage_points
    ]
    return simple_feed(
        self_href=hrefs.usage_points(customer.subscription_id), stamp=stamp, entries=entries
    )
