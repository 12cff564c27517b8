"""The read API on real PG&E samples: customers, usage points, readings, totals, bills."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from api.keys import api_key_create
from customers.models import Authorization
from ingest.models import IntervalReading, UsagePoint
from tests.api.conftest import ApiClient, point

pytestmark = pytest.mark.django_db


def ok(response) -> dict:
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


def test_customer_shows_consents_in_words_and_usage_points(reader, data):
    body = ok(reader.get("/api/v1/customers/user-1"))
    assert body["external_id"] == "user-1"
    assert [c["status"] for c in body["consents"]] == ["active"]
    assert sorted(p["usage_point_id"] for p in body["usage_points"]) == [
        "5391320451",
        "7170720474",
    ]
    assert {p["service"] for p in body["usage_points"]} == {"electricity", "gas"}


def test_usage_point_describes_units_flows_intervals_and_coverage(reader, data):
    body = ok(reader.get(f"/api/v1/usage-points/{point('5391320451').pk}"))
    assert body["service"] == "electricity"
    assert body["flows"] == ["delivered"]
    assert body["interval_seconds"] == [3600]
    (series,) = body["series"]
    assert series["unit"] == "Wh" or series["unit"].endswith("Wh")
    assert series["coverage"]["readings"] == 49
    assert series["coverage"]["days_with_gaps"] == []


def test_other_customers_and_unknown_ids_answer_404(reader, data):
    for path in (
        f"/api/v1/usage-points/{point('7541002993').pk}",
        f"/api/v1/usage-points/{point('7541002993').pk}/readings?start=2016-01-01&end=2017-01-01",
        f"/api/v1/usage-points/{point('7541002993').pk}/totals?interval=day&start=2016-01-01&end=2017-01-01",
        f"/api/v1/usage-points/{point('7541002993').pk}/bills",
        f"/api/v1/usage-points/{point('7541002993').pk}/export",
        "/api/v1/usage-points/999999",
        "/api/v1/customers/nobody",
    ):
        response = reader.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/problem+json"


def test_a_consent_only_key_cannot_read(data):
    plaintext = api_key_create(name="c", scopes=["consent"], now=timezone.now())[1]
    response = ApiClient(plaintext).get("/api/v1/customers/user-1")
    assert response.status_code == 403


def test_readings_are_exact_decimals_with_raw_value_multiplier_unit_and_quality(reader, data):
    pk = point("5391320451").pk
    body = ok(reader.get(f"/api/v1/usage-points/{pk}/readings?start=2019-11-03&end=2019-11-04"))
    readings = body["readings"]
    assert len(readings) == 25  # the autumn DST day has 25 local hours
    stored = IntervalReading.objects.filter(
        meter_reading__usage_point_id=pk, start__gte=datetime(2019, 11, 3, 7, tzinfo=UTC)
    ).order_by("start")[0]
    first = readings[0]
    assert first["raw_value"] == stored.value
    assert first["multiplier"] == -3
    assert first["raw_unit"] == 72
    # PG&E sends Wh x 10^-3; the API states kWh: raw x 10^(-3-3), exactly.
    assert first["unit"] == "kWh" and first["raw_unit_label"] == "Wh"
    assert Decimal(first["value"]) == Decimal(stored.value).scaleb(-6)
    assert isinstance(first["value"], str)
    assert first["flow"] == "delivered"
    assert first["quality"] in (None, "validated", "revenue quality", "valid") or first["quality"]


def test_cursor_pages_return_every_reading_once(reader, data):
    pk = point("5391320451").pk
    seen = []
    cursor = None
    pages = 0
    while True:
        params = {"start": "2019-11-01", "end": "2019-11-05", "limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = ok(reader.get(f"/api/v1/usage-points/{pk}/readings", params))
        seen += [(r["series"], r["start"]) for r in body["readings"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 7
    assert len(seen) == len(set(seen)) == 49


def test_a_page_never_spans_more_than_the_maximum(reader, data, settings):
    settings.GASCAP_API_READINGS_MAX_PAGE_DAYS = 1
    pk = point("5391320451").pk
    body = ok(reader.get(f"/api/v1/usage-points/{pk}/readings?start=2019-11-02&end=2019-11-05"))
    assert body["next_cursor"] is not None
    assert len(body["readings"]) == 24
    following = ok(
        reader.get(
            f"/api/v1/usage-points/{pk}/readings",
            {"start": "2019-11-02", "end": "2019-11-05", "cursor": body["next_cursor"]},
        )
    )
    # Spans are 24-hour days: the 25-hour local day spills one reading onto a third page.
    assert len(following["readings"]) == 24
    starts = [datetime.fromisoformat(r["start"]) for r in following["readings"]]
    assert (max(starts) - min(starts)).total_seconds() < 86400


def test_bad_parameters_are_problem_documents(reader, data):
    pk = point("5391320451").pk
    for query in (
        "start=2019-11-03&end=2019-11-02",
        "start=yesterday&end=2019-11-02",
        "start=2019-11-01&end=2019-11-05&cursor=%21%21not-a-cursor",
        "start=2019-11-01&end=2019-11-05&flow=sideways",
    ):
        response = reader.get(f"/api/v1/usage-points/{pk}/readings?{query}")
        assert response.status_code == 422, query
        assert response["Content-Type"] == "application/problem+json"


def test_a_range_outside_the_readings_years_is_a_problem_not_an_lmt_offset(reader, data):
    """schemathesis found year 0001: its local days start at -07:52:58, an offset an RFC 3339
    date-time cannot write. No reading lies before 1970, so the range is refused."""
    pk = point("5391320451").pk
    for path in ("readings?", "totals?interval=day&"):
        for query in ("start=0001-01-01&end=0001-01-03", "start=1969-12-30&end=2019-11-02"):
            response = reader.get(f"/api/v1/usage-points/{pk}/{path}{query}")
            assert response.status_code == 422, (path, query)
            assert response.json()["detail"] == "start and end must lie between 1970 and 9998"


def test_daily_totals_follow_local_days_with_a_25_hour_autumn_day(reader, data):
    pk = point("5391320451").pk
    body = ok(
        reader.get(f"/api/v1/usage-points/{pk}/totals?interval=day&start=2019-11-02&end=2019-11-04")
    )
    assert body["time_zone"] == "America/Los_Angeles"
    (series,) = body["series"]
    days = series["totals"]
    assert [d["start"] for d in days] == ["2019-11-02T00:00:00-07:00", "2019-11-03T00:00:00-07:00"]
    assert days[1]["end"] == "2019-11-04T00:00:00-08:00"  # a 25-hour day
    assert [d["readings"] for d in days] == [24, 25]
    assert [d["complete"] for d in days] == [True, True]
    stored = IntervalReading.objects.filter(
        meter_reading__usage_point_id=pk,
        start__gte=datetime(2019, 11, 3, 7, tzinfo=UTC),
        start__lt=datetime(2019, 11, 4, 8, tzinfo=UTC),
    )
    assert Decimal(days[1]["value"]) == Decimal(sum(r.value for r in stored)).scaleb(-6)
    assert series["unit"] == "kWh"


def test_hourly_totals_keep_both_one_oclock_hours_of_the_autumn_day(reader, data):
    pk = point("5391320451").pk
    body = ok(
        reader.get(
            f"/api/v1/usage-points/{pk}/totals?interval=hour&start=2019-11-03&end=2019-11-04"
        )
    )
    hours = body["series"][0]["totals"]
    assert len(hours) == 25
    assert [h["start"] for h in hours[1:3]] == [
        "2019-11-03T01:00:00-07:00",
        "2019-11-03T01:00:00-08:00",
    ]


def test_gas_days_starting_one_second_after_midnight_count_in_their_day(reader, data):
    pk = point("7170720474").pk
    body = ok(
        reader.get(f"/api/v1/usage-points/{pk}/totals?interval=day&start=2020-05-01&end=2020-06-01")
    )
    days = body["series"][0]["totals"]
    readings = IntervalReading.objects.filter(meter_reading__usage_point_id=pk).order_by("start")
    assert [d["readings"] for d in days] == [1] * readings.count()
    # 1589007601 = 2020-05-09 00:00:01 PDT: that gas day is May 9.
    assert days[0]["start"] == "2020-05-09T00:00:00-07:00"
    assert days[0]["complete"] is True
    month = ok(
        reader.get(
            f"/api/v1/usage-points/{pk}/totals?interval=month&start=2020-05-01&end=2020-06-01"
        )
    )["series"][0]["totals"]
    assert len(month) == 1 and month[0]["readings"] == readings.count()
    assert month[0]["complete"] is False


def test_bills_show_the_parsed_usage_summaries(reader, data):
    pk = point("1").pk
    bills = ok(reader.get(f"/api/v1/usage-points/{pk}/bills"))["bills"]
    assert len(bills) == 3
    assert [b["billing_start"] for b in bills] == sorted(b["billing_start"] for b in bills)
    assert all(
        b["bill_last_period"] is None
        or "." in b["bill_last_period"]
        or b["bill_last_period"].lstrip("-").isdigit()
        for b in bills
    )
    assert any(b["line_items"] for b in bills) or any(b["bill_last_period"] for b in bills)


@pytest.mark.parametrize("interval", ["day", "month"])
def test_stored_rollups_answer_what_the_readings_sum_to(data, interval):
    from api.totals import series_totals_from_readings, series_totals_from_rollups
    from ingest.models import MeterReading

    start = datetime(2000, 1, 1, tzinfo=UTC)
    end = datetime(2030, 1, 1, tzinfo=UTC)
    for series in MeterReading.objects.all():
        from_rollups = series_totals_from_rollups(
            series=series, interval=interval, start=start, end=end
        )
        assert from_rollups == series_totals_from_readings(
            series=series, interval=interval, start=start, end=end
        )
        assert from_rollups or not series.readings.exists()


def test_a_bound_usage_point_belongs_to_its_consent_not_to_its_href(reader, data):
    """The binding set by the fetch decides (docs/espi.md); the href is only the fallback for
    files an operator imported."""
    electric = point("5391320451")
    plain = Authorization.objects.get(subscription_id="86653")  # a customer without external_id
    UsagePoint.objects.filter(pk=electric.pk).update(authorization=plain)
    assert reader.get(f"/api/v1/usage-points/{electric.pk}").status_code == 404
    listed = ok(reader.get("/api/v1/customers/user-1"))["usage_points"]
    assert electric.pk not in [p["id"] for p in listed]
    owner = Authorization.objects.get(subscription_id="1")  # user-2's consent
    UsagePoint.objects.filter(pk=electric.pk).update(authorization=owner)
    assert reader.get(f"/api/v1/usage-points/{electric.pk}").status_code == 200
    listed = ok(reader.get("/api/v1/customers/user-2"))["usage_points"]
    assert electric.pk in [p["id"] for p in listed]
