"""`ingest_replay`, `request_data` and `ensure_schedules`."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.models import SubscriptionUsagePoint
from ingest.models import Fetch, IntervalReading
from tests.ingest.conftest import API_BASE, SID, UPID, espi_feed, subscription_url

pytestmark = pytest.mark.django_db


def _failed(url: str, created_at) -> Fetch:
    return Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.BULK,
        status=Fetch.Status.FAILED,
        reason="http_404",
        created_at=created_at,
    )


def test_replay_by_status_and_since(published):
    now = timezone.now()
    old = _failed(f"{API_BASE}Batch/Bulk/1", now - timedelta(days=10))
    recent = _failed(f"{API_BASE}Batch/Bulk/2", now - timedelta(hours=1))
    out = StringIO()
    since = (now - timedelta(days=2)).date().isoformat()
    call_command("ingest_replay", "--status", "FAILED", "--since", since, stdout=out)
    assert "re-queued 1 fetch" in out.getvalue()
    assert published.of("ingest.fetch_run") == [[recent.pk]]
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, recent.status) == (Fetch.Status.FAILED, Fetch.Status.PENDING)


def test_replay_by_ids(published):
    now = timezone.now()
    rows = [_failed(f"{API_BASE}Batch/Bulk/{i}", now) for i in range(3)]
    call_command("ingest_replay", "--ids", str(rows[0].pk), str(rows[2].pk), stdout=StringIO())
    assert sorted(a[0] for a in published.of("ingest.fetch_run")) == [rows[0].pk, rows[2].pk]


def test_replay_needs_status_or_ids():
    with pytest.raises(CommandError):
        call_command("ingest_replay")


def test_request_data_async(pge, authorization):
    pge.get(subscription_url(correlation=None), status=202)
    out = StringIO()
    call_command(
        "request_data",
        "--subscription",
        SID,
        "--start",
        "2026-03-01",
        "--end",
        "2026-03-03",
        stdout=out,
    )
    assert "statuses [202]" in out.getvalue()
    query = parse_qs(urlsplit(pge.calls[0].request.url).query)
    span = int(query["published-max"][0]) - int(query["published-min"][0])
    assert span == 3 * 86400


def test_request_data_sync_runs_usage_point_fetches(pge, authorization):
    SubscriptionUsagePoint.objects.create(authorization=authorization, usage_point_id=UPID)
    url_prefix = f"{API_BASE}Batch/Subscription/{SID}/UsagePoint/{UPID}"
    pge.get(url_prefix, body=espi_feed(), content_type="application/atom+xml")
    out = StringIO()
    call_command(
        "request_data",
        "--subscription",
        SID,
        "--start",
        "2026-03-09",
        "--end",
        "2026-03-09",
        "--sync",
        "--now",
        stdout=out,
    )
    assert "INGESTED" in out.getvalue()
    assert Fetch.objects.get().url.startswith(url_prefix + "?published-min=")
    assert IntervalReading.objects.count() == 24


def test_request_data_unknown_subscription():
    with pytest.raises(CommandError):
        call_command(
            "request_data",
            "--subscription",
            "SUBTESTNONE",
            "--start",
            "2026-03-01",
            "--end",
            "2026-03-02",
        )


def test_ensure_schedules_command_is_idempotent():
    out = StringIO()
    call_command("ensure_schedules", stdout=out)
    call_command("ensure_schedules", stdout=out)
    lines = out.getvalue().splitlines()
    from gascap.schedules import SCHEDULES

    assert len(SCHEDULES) >= 6  # ingest's five and the ops alert check
    assert sum(line.startswith("created") for line in lines) == len(SCHEDULES)
    assert sum(line.startswith("kept") for line in lines) == len(SCHEDULES)
