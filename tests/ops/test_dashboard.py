"""The dashboard and usage point page without a browser: the figures, their links, the chart's
marks, and the usage point list reading no aggregate over the readings."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ingest.models import Fetch, UsagePoint
from ingest.readings import document_import
from ops.usage import chart_window
from tests.ingest.test_readings import feed

pytestmark = pytest.mark.django_db


def _import_days(days: list[int]) -> None:
    zone = ZoneInfo("America/Los_Angeles")
    today = timezone.localtime(timezone.now(), zone).date()
    for back in days:
        day = today - timedelta(days=back)
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        document_import(
            source=io.BytesIO(feed(values=[1000] * 24, start=midnight)),
            source_label="t",
            now=timezone.now(),
        )


def test_index_is_the_dashboard_with_linked_figures(admin_client) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    Fetch.objects.create(
        url="u", url_sha256="u", status=Fetch.Status.POISONED, created_at=now, finished_at=now
    )
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="gascap-dashboard"' in html
    chart = html[html.index('id="dash-readings"') : html.index('id="dash-consents"')]
    assert chart.count('class="mark"') == 7
    assert re.search(
        r'href="/admin/ingest/fetch/\?status__exact=POISONED&amp;created_at__gte=', html
    )
    assert (
        "<script" not in html[html.index('id="gascap-dashboard"') : html.index('id="content-main"')]
    )


def test_usage_point_page_chart_and_a_list_without_reading_aggregates(admin_client) -> None:  # type: ignore[no-untyped-def]
    _import_days([1, 2, 3, 5, 8, 40])
    point = UsagePoint.objects.get()
    page = admin_client.get(reverse("admin:ingest_usagepoint_change", args=[point.pk]))
    html = page.content.decode()
    assert html.count('<rect class="mark"') == 6
    assert "6 of " in html and "days have data" in html
    first, last = chart_window(
        today=timezone.localdate(timezone.now(), ZoneInfo("America/Los_Angeles"))
    )
    assert html.count('<rect class="missing"') == (last - first).days + 1 - 6
    with CaptureQueriesContext(connection) as queries:
        listing = admin_client.get(reverse("admin:ingest_usagepoint_changelist"))
    assert listing.status_code == 200
    for query in queries.captured_queries:
        sql = query["sql"].upper()
        if "INGEST_INTERVALREADING" in sql:
            # Per series only (the primary key leads with the series: an index lookup), never
            # a count, and never grouped over the usage point's or the table's readings.
            assert "COUNT(" not in sql and "GROUP BY" not in sql, sql
            assert '"METER_READING_ID" = ' in sql, sql


@pytest.mark.parametrize(("warn_days", "bad"), [(30, False), (60, True)])
def test_certificate_figure_turns_red_inside_the_configured_window(  # type: ignore[no-untyped-def]
    admin_client, settings, monkeypatch, warn_days: int, bad: bool
) -> None:
    """The same window as the system check, the banner and the alert."""
    monkeypatch.setattr("ops.dashboard.certificate_days", lambda *, now: (45, ""))
    settings.GASCAP_PGE_CERT_WARN_DAYS = warn_days
    html = admin_client.get(reverse("admin:index")).content.decode()
    section = html[
        html.index('id="dash-certificate"') : html.index(
            "</section>", html.index('id="dash-certificate"')
        )
    ]
    assert "45 day(s) left" in section
    assert ('<p class="bad">45 day(s) left' in section) is bad
