"""Every real sample file imports; per-series counts and totals match an independent reading.

The independent reading below is a few regular expressions over the raw bytes (no XML
parser, nothing shared with `gascap.pge.espi`): entries, their self/up links, and each
IntervalReading's start, duration and value. Duplicates inside a file keep the last copy.
The case-specific facts (DST days, +1 s gas starts, flow directions…) are hand-checked figures
from the files' descriptions in espi-samples/SOURCES.md.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from ingest.models import IntervalReading, MeterReading, UsagePoint
from ingest.readings import EspiRejected, document_import

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
PACIFIC = ZoneInfo("America/Los_Angeles")

WELL_FORMED = sorted(
    p.name
    for p in FIXTURES.glob("*.xml")
    if not p.name.endswith("_malformed.xml")
    and re.match(r"(pge|gba|sce|opower|eversource|utilityapi|texas|savagedata)_", p.name)
)
MALFORMED = [
    "pge_cmd_2015_usagesummary_entry_unbound_prefix_malformed.xml",
    "pge_smd_2020_notification_batchlist_malformed.xml",
]

_P = rb"(?:[\w.-]+:)?"
_ENTRY = re.compile(rb"<" + _P + rb"entry[\s>].*?</" + _P + rb"entry>", re.S)
_LINK = re.compile(rb"<" + _P + rb"link\b([^>]*)>", re.S)
_REL = re.compile(rb'rel\s*=\s*"([^"]*)"')
_HREF = re.compile(rb'href\s*=\s*"([^"]*)"')
_READING = re.compile(rb"<" + _P + rb"IntervalReading>(.*?)</" + _P + rb"IntervalReading>", re.S)


def _field(name: bytes, text: bytes) -> bytes:
    match = re.search(rb"<" + _P + name + rb">\s*([^<]*?)\s*</", text)
    assert match, f"no {name!r} in {text[:200]!r}"
    return match.group(1)


def independent_series(path: Path) -> dict[str, tuple[int, int]]:
    """{MeterReading href: (distinct (start, duration) count, sum of values)}."""
    readings: dict[str, dict[tuple[bytes, int], int]] = defaultdict(dict)
    for entry in _ENTRY.finditer(path.read_bytes()):
        body = entry.group(0)
        found = _READING.findall(body)
        if not found:
            continue
        links = {}
        for attrs in _LINK.findall(body):
            rel, href = _REL.search(attrs), _HREF.search(attrs)
            if rel and href:
                links.setdefault(rel.group(1), href.group(1).decode())
        collection = links.get(b"up") or links[b"self"].rsplit("/", 1)[0]
        meter_reading = collection.removesuffix("/IntervalBlock")
        for text in found:
            key = (_field(rb"start", text), int(_field(rb"duration", text)))
            readings[meter_reading][key] = int(_field(rb"value", text))
    return {mr: (len(r), sum(r.values())) for mr, r in readings.items()}


def stored_series() -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for series in MeterReading.objects.all():
        values = list(series.readings.values_list("value", flat=True))
        out[series.href] = (len(values), sum(values))
    return out


def load(name: str, label: str | None = None):
    return document_import(
        source=str(FIXTURES / name), source_label=label or f"sample:{name}", now=NOW
    )


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


def test_there_are_enough_samples():
    assert len(WELL_FORMED) == 28


@pytest.mark.parametrize("name", WELL_FORMED)
def test_every_well_formed_sample_imports_with_independently_checked_totals(name):
    result = load(name)
    expected = independent_series(FIXTURES / name)
    assert stored_series() == expected
    assert result.readings_new == sum(count for count, _ in expected.values())
    again = load(name, label="replay")
    assert (again.readings_new, again.readings_updated) == (0, 0)
    assert again.readings_unchanged == result.readings_new


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_samples_fail_cleanly_and_store_nothing(name):
    with pytest.raises(EspiRejected) as caught:
        load(name)
    assert caught.value.reason == "malformed"
    assert caught.value.line is not None and caught.value.column is not None
    assert UsagePoint.objects.count() == 0 and IntervalReading.objects.count() == 0


def _local_day(series: MeterReading, day: date) -> list[IntervalReading]:
    start = datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)
    end = (datetime(day.year, day.month, day.day, tzinfo=PACIFIC) + timedelta(days=1)).astimezone(
        UTC
    )
    return list(series.readings.filter(start__gte=start, start__lt=end).order_by("start"))


def test_pge_gas_daily_therm_multiplier_minus_8_and_one_second_starts():
    load("pge_smd_2020_gas_daily_therm_bulk.xml")
    series = MeterReading.objects.select_related("reading_type", "usage_point").get()
    assert series.usage_point.service_kind == 1
    assert (series.reading_type.uom, series.reading_type.multiplier) == (169, -8)
    (reading,) = series.readings.all()
    assert reading.start == datetime(2020, 5, 9, 7, 0, 1, tzinfo=UTC)  # local midnight + 1 s
    assert (reading.duration, reading.value, reading.quality) == (86400, 0, 17)

    load("pge_cmd_2016_gas_daily_therm.xml")
    series = MeterReading.objects.get(meter_reading_id="BCD")
    values = [
        r.scaled_value(series.reading_type.multiplier) for r in series.readings.order_by("start")
    ]
    assert values == [Decimal(0), Decimal("1.03513077")]  # 103513077 x 10^-8 therm, exact


def test_dst_fall_back_is_one_25_hour_block():
    load("pge_smd_2019_electric_hourly_bulk_dst_fallback.xml")
    series = MeterReading.objects.get()
    day = _local_day(series, date(2019, 11, 3))
    assert len(day) == 25 and sum(r.duration for r in day) == 90000
    assert day[0].start == datetime(2019, 11, 3, 7, tzinfo=UTC)
    assert len(_local_day(series, date(2019, 11, 2))) == 24


def test_dst_days_split_in_two_blocks_and_net_metering_series():
    load("pge_cmd_2016_electric_hourly_two_usagepoints_netmeter.xml")
    series = {s.meter_reading_id: s for s in MeterReading.objects.select_related("reading_type")}
    assert {k: s.reading_type.flow_direction for k, s in series.items()} == {"DEF": 1, "ABC": 19}
    assert UsagePoint.objects.count() == 1  # the repeated UsagePoint entry is one usage point
    assert len(_local_day(series["DEF"], date(2015, 11, 1))) == 25  # 2 + 23
    assert len(_local_day(series["DEF"], date(2016, 3, 13))) == 23  # 2 + 21
    # 49 summary entries, two of which share one self href for two billing periods.
    assert series["DEF"].usage_point.summaries.count() == 49


def test_three_usage_points_with_delivered_and_received_series():
    result = load("gba_sdk_batch_three_usagepoints_netmeter_15min.xml")
    assert result.usage_points == 3
    directions = sorted(
        (s.usage_point.usage_point_id, s.meter_reading_id, s.reading_type.flow_direction)
        for s in MeterReading.objects.select_related("usage_point", "reading_type")
    )
    assert directions == [
        ("4284792", "1", 1),
        ("4284792", "2", 19),
        ("4284793", "1", 1),
        ("4284794", "1", 19),
    ]
    export_only = MeterReading.objects.get(usage_point__usage_point_id="4284794")
    assert export_only.readings.count() == 96
    assert set(export_only.readings.values_list("value", flat=True)) == {0}


def test_15_minute_readings_with_cost_and_quality():
    load("gba_openespi_15min_cost_readingquality.xml")
    readings = IntervalReading.objects.all()
    assert readings.count() == 1340
    assert not readings.filter(cost__isnull=True).exists()
    assert sorted(readings.exclude(quality=None).values_list("quality", flat=True)) == [7, 8]
    assert set(readings.values_list("duration", flat=True)) == {900}


def test_repeated_blocks_collapse_and_units_stay_unknown():
    result = load("pge_cmd_2015_intervalblock_feed_repeated_blocks.xml")
    assert result.readings_new == 2280  # 2556 readings in the file, 2280 distinct intervals
    series = MeterReading.objects.get()
    assert not series.units_known


def test_overlapping_deliveries_are_not_duplicated():
    first = load("pge_smd_2019_electric_hourly_bulk_2019-10-16_two_blocks.xml")
    second = load("pge_smd_2019_electric_hourly_bulk_2019-10-17_overlaps_previous.xml")
    assert (first.readings_new, second.readings_new, second.readings_unchanged) == (48, 0, 24)
    assert IntervalReading.objects.count() == 48


def test_bom_and_default_espi_namespace():
    assert (FIXTURES / "texas_2012_hourly_bom_default_espi_ns.xml").read_bytes()[
        :3
    ] == b"\xef\xbb\xbf"
    assert load("texas_2012_hourly_bom_default_espi_ns.xml").readings_new == 2184


def test_stray_backslash_n_text_between_elements():
    assert b"/>\\n<" in (FIXTURES / "pge_smd_2019_electric_hourly_bulk_1day.xml").read_bytes()
    load("pge_smd_2019_electric_hourly_bulk_1day.xml")
    assert set(IntervalReading.objects.values_list("quality", flat=True)) == {17}
    assert IntervalReading.objects.exclude(tou=None).count() == 24


def test_opower_relative_hrefs_link_to_the_usage_point_entry():
    load("pge_dmd_2012_opower_residential_hourly.xml")
    series = MeterReading.objects.select_related("usage_point").get()
    assert series.usage_point.href.startswith("/v1/User/")
    assert series.readings.count() == 3791
    load("opower_nationalgrid_ma_gas_monthly_billing.xml")
    # Its MeterReading is under User/…, its UsagePoint entry under BillingAccount/….
    gas = MeterReading.objects.get(href__contains="/NET_USAGE/")
    assert gas.usage_point.href == "/v1/BillingAccount/1234567890/UsagePoint/NET_USAGE"
    assert UsagePoint.objects.count() == 2
    assert gas.readings.count() == 35


def test_import_command_over_every_sample_file(capsys):
    for name in WELL_FORMED:
        call_command("import_espi", str(FIXTURES / name))
    out = capsys.readouterr().out
    assert out.count("readings: ") == len(WELL_FORMED)


def test_import_from_a_file_object_matches_a_path():
    data = (FIXTURES / "sce_bulk_intervalblock_15min_cost.xml").read_bytes()
    result = document_import(source=io.BytesIO(data), source_label="bytes", now=NOW)
    assert result.readings_new == 97
    total = sum(IntervalReading.objects.values_list("cost", flat=True))
    assert total == sum(int(c) for c in re.findall(rb"<cost>(\d+)</cost>", data))
