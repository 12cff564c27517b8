"""Reading storage (`ingest.readings`): one transaction per document, idempotent re-imports,
in-place corrections with revisions, series identity, units unknown until the ReadingType
arrives, and nothing stored from a rejected document."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from ingest.models import (
    IntervalReading,
    MeterReading,
    ReadingRevision,
    ReadingType,
    UsagePoint,
    UsageSummary,
)
from ingest.readings import EspiRejected, document_import, reading_type_attach

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
BASE = "https://api.example.test/GreenButtonConnect/espi/1_1/resource/"
UP = f"{BASE}Subscription/SUBX1/UsagePoint/UPX1"
RT = f"{BASE}ReadingType/RTX1"
DAY = 1773039600  # 2026-03-09 07:00Z, a Pacific midnight


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


def feed(
    *,
    values: list[int],
    qualities: list[int | None] | None = None,
    start: int = DAY,
    reading_type: bool = True,
    multiplier: int = -3,
    flow_direction: int = 1,
    mr: str = "MRX1",
    extra: str = "",
) -> bytes:
    """A PG&E-shaped feed (ns0/ns1 prefixes, ReadingType before the UsagePoint)."""
    qualities = qualities or [17] * len(values)
    mr_href = f"{UP}/MeterReading/{mr}"
    readings = "".join(
        "<ns0:IntervalReading>"
        + (
            f"<ns0:ReadingQuality><ns0:quality>{q}</ns0:quality></ns0:ReadingQuality>"
            if q is not None
            else ""
        )
        + "<ns0:timePeriod><ns0:duration>3600</ns0:duration>"
        f"<ns0:start>{start + 3600 * i}</ns0:start></ns0:timePeriod>"
        f"<ns0:value>{v}</ns0:value></ns0:IntervalReading>"
        for i, (v, q) in enumerate(zip(values, qualities, strict=True))
    )

    def entry(self_href: str, up: str, related: list[str], body: str) -> str:
        links = f'<ns1:link href="{up}" rel="up"/><ns1:link href="{self_href}" rel="self"/>'
        links += "".join(f'<ns1:link href="{h}" rel="related"/>' for h in related)
        return f"<ns1:entry>{links}<ns1:content>{body}</ns1:content></ns1:entry>"

    entries = []
    if reading_type:
        entries.append(
            entry(
                RT,
                f"{BASE}ReadingType",
                [],
                "<ns0:ReadingType><ns0:accumulationBehaviour>4</ns0:accumulationBehaviour>"
                f"<ns0:commodity>1</ns0:commodity><ns0:flowDirection>{flow_direction}</ns0:flowDirection>"
                "<ns0:intervalLength>3600</ns0:intervalLength><ns0:kind>12</ns0:kind>"
                f"<ns0:powerOfTenMultiplier>{multiplier}</ns0:powerOfTenMultiplier><ns0:uom>72</ns0:uom>"
                "</ns0:ReadingType>",
            )
        )
    entries += [
        entry(
            UP,
            f"{BASE}Subscription/SUBX1/UsagePoint",
            [f"{UP}/MeterReading"],
            "<ns0:UsagePoint><ns0:ServiceCategory><ns0:kind>0</ns0:kind></ns0:ServiceCategory></ns0:UsagePoint>",
        ),
        entry(
            mr_href, f"{UP}/MeterReading", [f"{mr_href}/IntervalBlock", RT], "<ns0:MeterReading/>"
        ),
        entry(
            f"{mr_href}/IntervalBlock/{start}",
            f"{mr_href}/IntervalBlock",
            [],
            f"<ns0:IntervalBlock><ns0:interval><ns0:duration>{3600 * len(values)}</ns0:duration>"
            f"<ns0:start>{start}</ns0:start></ns0:interval>{readings}</ns0:IntervalBlock>",
        ),
    ]
    return (
        '<ns1:feed xmlns:ns0="http://naesb.org/espi" xmlns:ns1="http://www.w3.org/2005/Atom">'
        + "".join(entries)
        + extra
        + "</ns1:feed>"
    ).encode()


def reading_type_entry(*, multiplier: int = -3) -> bytes:
    return (
        '<entry xmlns="http://www.w3.org/2005/Atom">'
        f'<link href="{RT}" rel="self"/><link href="{BASE}ReadingType" rel="up"/><content>'
        '<ReadingType xmlns="http://naesb.org/espi"><accumulationBehaviour>4'
        "</accumulationBehaviour><commodity>1</commodity><flowDirection>1</flowDirection>"
        "<intervalLength>3600</intervalLength><kind>12</kind>"
        f"<powerOfTenMultiplier>{multiplier}</powerOfTenMultiplier><uom>72</uom>"
        "</ReadingType></content></entry>"
    ).encode()


def do_import(data: bytes, label: str = "test:doc", now: datetime = NOW):
    return document_import(source=io.BytesIO(data), source_label=label, now=now)


def stored() -> list[tuple[int, int, int | None]]:
    return list(
        IntervalReading.objects.order_by("start").values_list("duration", "value", "quality")
    )


def test_first_import_stores_every_reading_with_its_series_and_units():
    result = do_import(feed(values=[1067300, 2500, 0]))
    assert (result.readings_new, result.readings_updated, result.readings_unchanged) == (3, 0, 0)
    assert result.usage_points == 1 and result.missing_reading_types == []
    series = MeterReading.objects.get()
    assert series.usage_point.usage_point_id == "UPX1"
    assert series.meter_reading_id == "MRX1"
    assert series.reading_type.uom == 72 and series.reading_type.flow_direction == 1
    first = IntervalReading.objects.order_by("start").first()
    assert first.start == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
    # 1067300 x 10^-3 Wh, exactly.
    assert first.scaled_value(series.reading_type.multiplier) == Decimal("1067.3")
    assert first.value == 1067300


def test_reimporting_the_same_document_changes_nothing():
    data = feed(values=[10, 20, 30])
    do_import(data)
    before = stored()
    result = do_import(data, label="test:again")
    assert (result.readings_new, result.readings_updated, result.readings_unchanged) == (0, 0, 3)
    assert stored() == before
    assert ReadingRevision.objects.count() == 0
    assert MeterReading.objects.count() == 1 and UsagePoint.objects.count() == 1


@pytest.mark.postgres
def test_reimport_writes_no_row_on_postgresql():
    data = feed(values=list(range(48)))
    do_import(data)

    def writes() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0),"
                " coalesce(sum(n_tup_hot_upd), 0)"
                " FROM pg_stat_xact_user_tables WHERE relname LIKE 'ingest\\_%%'"
            )
            return cursor.fetchone()

    before = writes()
    result = do_import(data, label="test:replay")
    assert result.readings_unchanged == 48
    assert writes() == before


def test_a_correction_updates_in_place_and_keeps_a_revision():
    do_import(feed(values=[10, 20, 30], qualities=[17, 17, 17]), label="delivery:1")
    later = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    result = do_import(
        feed(values=[10, 25, 30], qualities=[19, 17, 17]), label="delivery:2", now=later
    )
    assert (result.readings_new, result.readings_updated, result.readings_unchanged) == (0, 2, 1)
    assert stored() == [(3600, 10, 19), (3600, 25, 17), (3600, 30, 17)]
    revisions = list(
        ReadingRevision.objects.order_by("start").values_list(
            "old_value", "old_quality", "new_value", "new_quality", "source_label", "received_at"
        )
    )
    assert revisions == [
        (10, 17, 10, 19, "delivery:2", later),
        (20, 17, 25, 17, "delivery:2", later),
    ]


def test_overlapping_deliveries_store_each_interval_once():
    do_import(feed(values=[1, 2, 3, 4]))
    result = do_import(feed(values=[3, 4, 5, 6], start=DAY + 2 * 3600))
    assert (result.readings_new, result.readings_unchanged) == (2, 2)
    assert [v for _, v, _ in stored()] == [1, 2, 3, 4, 5, 6]


def test_a_repeated_block_in_one_document_counts_once_and_the_last_copy_wins():
    data = feed(values=[1, 2])
    # The same block again (same self href, one value changed), as PG&E's 2015 feed does.
    block_start = data.index(
        b'<ns1:entry><ns1:link href="' + f'{UP}/MeterReading/MRX1/IntervalBlock"'.encode()
    )
    block = data[block_start : data.rindex(b"</ns1:feed>")]
    data = data.replace(
        b"</ns1:feed>",
        block.replace(b"<ns0:value>2</ns0:value>", b"<ns0:value>7</ns0:value>") + b"</ns1:feed>",
    )
    result = do_import(data)
    assert result.readings_new == 2
    assert [v for _, v, _ in stored()] == [1, 7]


def test_delivered_and_received_series_are_never_mixed():
    do_import(feed(values=[100, 200], flow_direction=1, mr="MRDEL"))
    do_import(feed(values=[5, 6], flow_direction=19, mr="MRREC").replace(b"RTX1", b"RTX2"))
    totals = {
        (s.meter_reading_id, s.reading_type.flow_direction): sum(
            s.readings.values_list("value", flat=True)
        )
        for s in MeterReading.objects.select_related("reading_type")
    }
    assert totals == {("MRDEL", 1): 300, ("MRREC", 19): 11}


def test_a_changed_reading_type_is_a_new_series_not_a_silent_rescale():
    do_import(feed(values=[1000], multiplier=-3))
    do_import(feed(values=[1], multiplier=0))
    assert ReadingType.objects.count() == 2
    assert MeterReading.objects.count() == 2
    assert sorted(IntervalReading.objects.values_list("value", flat=True)) == [1, 1000]


def test_units_unknown_until_the_reading_type_is_attached():
    result = do_import(feed(values=[1067300, 5], reading_type=False))
    assert result.missing_reading_types == [RT]
    series = MeterReading.objects.get()
    assert not series.units_known and series.reading_type_href == RT
    assert sorted(IntervalReading.objects.values_list("value", flat=True)) == [5, 1067300]

    resolved = reading_type_attach(href=RT, source=io.BytesIO(reading_type_entry()), now=NOW)
    assert resolved == 1
    series.refresh_from_db()
    assert series.units_known and series.reading_type.multiplier == -3
    # A later blocks-only delivery lands in the same, now known-units, series.
    result = do_import(feed(values=[1067300, 6], reading_type=False))
    assert result.missing_reading_types == []
    assert (result.readings_updated, result.readings_unchanged) == (1, 1)
    assert MeterReading.objects.count() == 1


def test_attaching_merges_into_an_existing_known_units_series():
    do_import(feed(values=[1, 2]))  # known units
    MeterReading.objects.update(reading_type=None)  # pretend it arrived without
    unknown = MeterReading.objects.get()
    do_import(feed(values=[1, 2, 3]))  # a second series, known units
    assert MeterReading.objects.count() == 2
    reading_type_attach(href=RT, source=io.BytesIO(reading_type_entry()), now=NOW)
    (series,) = MeterReading.objects.all()
    assert series.pk != unknown.pk and series.units_known
    assert sorted(series.readings.values_list("value", flat=True)) == [1, 2, 3]


def test_usage_summary_is_stored_with_money_in_hundred_thousandths():
    summary = (
        f'<ns1:entry><ns1:link href="{UP}/UsageSummary" rel="up"/>'
        f'<ns1:link href="{UP}/UsageSummary/1" rel="self"/><ns1:content><ns0:UsageSummary>'
        "<ns0:billingPeriod><ns0:duration>2592000</ns0:duration><ns0:start>1770000000</ns0:start></ns0:billingPeriod>"
        "<ns0:billLastPeriod>8123456</ns0:billLastPeriod><ns0:currency>840</ns0:currency>"
        "<ns0:overallConsumptionLastPeriod><ns0:powerOfTenMultiplier>-3</ns0:powerOfTenMultiplier>"
        "<ns0:uom>72</ns0:uom><ns0:value>412000000</ns0:value></ns0:overallConsumptionLastPeriod>"
        "<ns0:costAdditionalDetailLastPeriod><ns0:amount>1200000</ns0:amount><ns0:itemKind>3</ns0:itemKind>"
        "</ns0:costAdditionalDetailLastPeriod></ns0:UsageSummary></ns1:content></ns1:entry>"
    )
    result = do_import(feed(values=[1], extra=summary))
    assert result.summaries == 1
    row = UsageSummary.objects.get()
    assert row.usage_point.usage_point_id == "UPX1"
    assert row.bill_last_period == 8123456  # $81.23456 as sent
    assert row.overall_consumption == Decimal("412000")
    assert row.billing_start == datetime.fromtimestamp(1770000000, UTC)
    assert row.line_items == [{"amount": "1200000", "itemKind": "3"}]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d[: len(d) - 40],  # truncated after the readings were read
        lambda d: d.replace(b"<ns0:value>3</ns0:value>", b"<ns0:value>x</ns0:value>"),
        lambda d: b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>' + d,
    ],
    ids=["truncated", "bad-value", "dtd"],
)
def test_a_rejected_document_stores_nothing(breakage):
    do_import(feed(values=[1, 2]), label="good")
    before = (stored(), MeterReading.objects.count(), UsagePoint.objects.count())
    bad = breakage(feed(values=[9, 9, 3, 4], start=DAY + 86400, mr="MRNEW"))
    with pytest.raises(EspiRejected):
        do_import(bad, label="bad")
    assert (stored(), MeterReading.objects.count(), UsagePoint.objects.count()) == before


def test_a_large_document_streams_through_the_same_path():
    values = [i % 977 for i in range(24 * 400)]
    result = do_import(feed(values=values))
    assert result.readings_new == len(values)
    assert IntervalReading.objects.count() == len(values)
    assert sum(IntervalReading.objects.values_list("value", flat=True)) == sum(values)


def test_readings_that_cannot_be_placed_are_counted_not_stored():
    data = feed(values=[1, 2, 3]).replace(b"<ns0:value>2</ns0:value>", b"")
    result = do_import(data)
    assert (result.readings_new, result.readings_skipped) == (2, 1)
    # A bare IntervalBlock (no Atom entry, so no link to any MeterReading).
    bare = (
        b'<IntervalBlock xmlns="http://naesb.org/espi"><IntervalReading><timePeriod>'
        b"<duration>900</duration><start>1773039600</start></timePeriod><value>5</value>"
        b"</IntervalReading></IntervalBlock>"
    )
    result = do_import(bare)
    assert (result.readings_new, result.readings_skipped) == (0, 1)
    assert IntervalReading.objects.count() == 2
