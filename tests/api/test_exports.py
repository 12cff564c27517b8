"""Exports of one usage point: CSV as `export_readings` writes it, and ESPI XML that
validates against the v3.3 schema and imports back unchanged."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from lxml import etree

from api.espi_export import espi_document
from ingest.models import IntervalReading, MeterReading, UsagePoint
from ingest.readings import document_import
from ingest.readings_export import CSV_HEADER, readings_export_rows
from tests.api.conftest import point

pytestmark = pytest.mark.django_db

SCHEMA_DIR = Path(__file__).parent.parent / "fixtures" / "espi-schema-v3.3"
SAMPLES = [
    ("pge_smd_2019_electric_hourly_bulk_dst_fallback.xml", "4095251", "5391320451"),
    ("pge_smd_2020_gas_daily_therm_bulk.xml", "4095251", "7170720474"),
    ("gba_openespi_15min_cost_readingquality.xml", None, None),
]


class _LocalXmlXsd(etree.Resolver):
    def resolve(self, url, pubid, context):
        if url.endswith("/xml.xsd"):
            return self.resolve_filename(str(SCHEMA_DIR / "xml.xsd"), context)
        return None


def espi_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalXmlXsd())
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "usage.xsd"), parser))


def body_of(response) -> bytes:
    assert response.status_code == 200, response.content[:300]
    return b"".join(response.streaming_content)


def test_csv_export_streams_the_export_readings_rows(reader, data):
    pk = point("5391320451").pk
    response = reader.get(f"/api/v1/usage-points/{pk}/export", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body_of(response).decode())))
    assert tuple(rows[0]) == CSV_HEADER
    assert [tuple(r) for r in rows[1:]] == list(readings_export_rows(usage_point_pk=pk))
    assert len(rows) == 50


def test_csv_export_of_a_range(reader, data):
    pk = point("5391320451").pk
    response = reader.get(
        f"/api/v1/usage-points/{pk}/export",
        {"format": "csv", "start": "2019-11-03", "end": "2019-11-04"},
    )
    assert len(body_of(response).decode().strip().splitlines()) == 26


def snapshot(usage_point_id: str) -> list[tuple]:
    point = UsagePoint.objects.get(usage_point_id=usage_point_id)
    series = {
        s.pk: (
            s.href,
            s.reading_type
            and (
                s.reading_type.uom,
                s.reading_type.power_of_ten_multiplier,
                s.reading_type.flow_direction,
                s.reading_type.interval_length,
                s.reading_type.commodity,
                s.reading_type.default_quality,
            ),
        )
        for s in MeterReading.objects.filter(usage_point=point)
    }
    return sorted(
        (
            series[r.meter_reading_id],
            r.start,
            r.duration,
            r.value,
            r.cost,
            r.quality,
            r.tou,
            r.cpp,
            r.consumption_tier,
        )
        for r in IntervalReading.objects.filter(meter_reading__in=list(series))
    )


@pytest.mark.parametrize("usage_point_id", ["5391320451", "7170720474"])
def test_espi_export_validates_and_round_trips_through_import_espi(
    reader, data, usage_point_id, tmp_path
):
    before = snapshot(usage_point_id)
    pk = point(usage_point_id).pk
    response = reader.get(f"/api/v1/usage-points/{pk}/export", {"format": "espi"})
    assert response["Content-Type"] == "application/atom+xml"
    document = body_of(response)
    schema = espi_schema()
    parsed = etree.fromstring(document)
    assert schema.validate(parsed), schema.error_log
    # Into an empty store through the operator's command: the same readings come back.
    path = tmp_path / "export.xml"
    path.write_bytes(document)
    UsagePoint.objects.all().delete()
    call_command("import_espi", str(path))
    assert snapshot(usage_point_id) == before


def test_espi_export_keeps_cost_and_quality(fixture_path, tmp_path):
    # The GBA sample carries cost and ReadingQuality on its readings.
    now = timezone.now()
    document_import(
        source=fixture_path("gba_openespi_15min_cost_readingquality.xml"),
        source_label="gba",
        now=now,
    )
    target = UsagePoint.objects.get()
    before = snapshot(target.usage_point_id)
    assert any(row[4] is not None for row in before) and any(row[5] is not None for row in before)
    # Its hrefs name no Subscription (no consent owns it): the exporter is called directly.
    document = "".join(espi_document(point=target, query=IntervalReading.objects.all())).encode()
    assert espi_schema().validate(etree.fromstring(document))
    path = tmp_path / "export.xml"
    path.write_bytes(document)
    UsagePoint.objects.all().delete()
    call_command("import_espi", str(path))
    assert snapshot(target.usage_point_id) == before


@pytest.mark.parametrize("exponent", [-8, -5, -3, -1, 0, 2])
@pytest.mark.parametrize("value", [0, 1, -1, 7, -12345, 123456789012, -999999999])
def test_fast_decimal_text_equals_the_decimal_format(exponent, value):
    from decimal import Decimal

    from api.exports import _decimal_formatter

    assert _decimal_formatter(exponent)(value) == format(Decimal(value).scaleb(exponent), "f")
