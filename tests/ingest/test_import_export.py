"""`manage.py import_espi` and `manage.py export_readings`: what an operator sees."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ingest.models import IntervalReading, UsagePoint
from tests.ingest.test_readings import feed

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HEADER = "usage_point,meter_reading,commodity,uom,flow_direction,start,duration,value,quality,cost"


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def export(*args: str) -> list[dict[str, str]]:
    out, _ = run("export_readings", "--format", "csv", *args)
    lines = out.splitlines()
    assert lines[0] == HEADER
    return list(csv.DictReader(io.StringIO(out)))


def test_import_prints_one_summary_line_per_file(tmp_path):
    path = tmp_path / "day.xml"
    path.write_bytes(feed(values=[1, 2, 3]))
    out, _ = run("import_espi", str(path), str(path))
    assert out.splitlines() == [
        f"{path}: readings: 3 new, 0 updated, 0 unchanged; usage points: 1",
        f"{path}: readings: 0 new, 0 updated, 3 unchanged; usage points: 1",
    ]


def test_import_reports_an_update(tmp_path):
    first, second = tmp_path / "v1.xml", tmp_path / "v2.xml"
    first.write_bytes(feed(values=[1, 2, 3]))
    second.write_bytes(feed(values=[1, 5, 3]))
    out, _ = run("import_espi", str(first), str(second))
    assert out.splitlines()[1].endswith("readings: 0 new, 1 updated, 2 unchanged; usage points: 1")


@pytest.mark.parametrize(
    "name",
    [
        "pge_cmd_2015_usagesummary_entry_unbound_prefix_malformed.xml",
        "pge_smd_2020_notification_batchlist_malformed.xml",
    ],
)
def test_import_exits_non_zero_with_the_parser_message_and_stores_nothing(name):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_espi", str(FIXTURES / name), stdout=out, stderr=err)
    assert "rejected (malformed)" in err.getvalue() and "line 1, column" in err.getvalue()
    assert UsagePoint.objects.count() == 0


def test_a_hostile_file_is_refused_and_the_good_one_still_imported(tmp_path):
    hostile = tmp_path / "hostile.xml"
    hostile.write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom">&x;</feed>'
    )
    good = tmp_path / "good.xml"
    good.write_bytes(feed(values=[4]))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 2"):
        call_command("import_espi", str(hostile), str(good), stdout=out, stderr=err)
    assert "rejected (dtd)" in err.getvalue()
    assert IntervalReading.objects.count() == 1


def test_export_gas_exact_decimal_and_iso_utc_start():
    run("import_espi", str(FIXTURES / "pge_cmd_2016_gas_daily_therm.xml"))
    rows = export()
    assert rows == [
        {
            "usage_point": "7541002993",
            "meter_reading": "BCD",
            "commodity": "natural gas",
            "uom": "therm",
            "flow_direction": "delivered",
            "start": "2012-05-02T07:00:01Z",
            "duration": "86400",
            "value": "0.00000000",
            "quality": "17",
            "cost": "",
        },
        {
            "usage_point": "7541002993",
            "meter_reading": "BCD",
            "commodity": "natural gas",
            "uom": "therm",
            "flow_direction": "delivered",
            "start": "2012-05-03T07:00:01Z",
            "duration": "86400",
            "value": "1.03513077",
            "quality": "17",
            "cost": "",
        },
    ]


def test_export_cost_in_currency_and_quality_codes():
    run("import_espi", str(FIXTURES / "gba_openespi_15min_cost_readingquality.xml"))
    rows = export()
    assert len(rows) == 1340
    assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    data = (FIXTURES / "gba_openespi_15min_cost_readingquality.xml").read_text()
    assert rows[0]["cost"] and "E" not in rows[0]["cost"]
    first_cost = int(re.search(r"<cost>(\d+)</cost>", data).group(1))
    assert rows[0]["cost"] == f"{first_cost // 100000}.{first_cost % 100000:05d}"
    assert sorted(r["quality"] for r in rows if r["quality"]) == ["7", "8"]


def test_export_units_unknown_gives_raw_values_and_empty_unit():
    run("import_espi", str(FIXTURES / "pge_cmd_2015_intervalblock_feed_repeated_blocks.xml"))
    rows = export("--start", "2015-04-30T07:00:00Z", "--end", "2015-04-30T09:00:00Z")
    assert [(r["start"], r["uom"], r["flow_direction"]) for r in rows] == [
        ("2015-04-30T07:00:00Z", "", ""),
        ("2015-04-30T08:00:00Z", "", ""),
    ]
    assert all(r["value"].isdigit() for r in rows)


def test_export_filters_by_usage_point_and_orders_rows():
    run("import_espi", str(FIXTURES / "gba_sdk_batch_three_usagepoints_netmeter_15min.xml"))
    rows = export()
    keys = [(r["usage_point"], r["meter_reading"], r["start"]) for r in rows]
    assert keys == sorted(keys) and len(rows) == 384
    only = export("--usage-point", "4284792")
    assert {r["usage_point"] for r in only} == {"4284792"} and len(only) == 192
    assert {r["flow_direction"] for r in only} == {"delivered", "received"}
    assert {r["uom"] for r in only} == {"Wh"}


def test_export_rejects_a_bad_date():
    with pytest.raises(CommandError, match="--start"):
        run("export_readings", "--format", "csv", "--start", "yesterday")
