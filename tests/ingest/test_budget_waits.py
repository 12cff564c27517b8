"""Issue 10 §2: work the PG&E call budget cannot fit waits (recorded, visible, resumed in the
next window) and never fails; notified data outranks gap fills and scheduled requests; the
daily mode `auto` picks Bulk when per-subscription requests would not fit; `pge_budget`.

Caps here leave scheduled work a zero share, so the outcome does not depend on the hour the
test runs in (the gate counts in real clock windows)."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from gascap.pge_budget.budget import budget_usage, hour_window
from ingest import fetches, gap_audit, tasks
from ingest.budget_plan import daily_calls_projection, daily_request_mode
from ingest.models import DataRequest, Fetch, Notification
from tests.ingest.conftest import (
    API_BASE,
    CUSTOMER_ACCESS,
    TOKEN_URL,
    bulk_url,
    espi_feed,
    subscription_url,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled_starved(settings):
    """Notified fetches may use 90 calls an hour; scheduled work none."""
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 100
    settings.GASCAP_PGE_BUDGET_PER_DAY = 1000
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0.1
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0.9
    return settings


def _fetch(url: str, *, now, notification: Notification | None = None) -> Fetch:
    return Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id="SUBTEST0001",
        status=Fetch.Status.PENDING,
        created_at=now,
        notification=notification,
    )


def _gap_url(now) -> str:  # type: ignore[no-untyped-def]
    """A gap fill's synchronous UsagePoint URL, as the gap audit makes it."""
    return gap_audit.usage_point_fetch_url(
        subscription_id="SUBTEST0001",
        usage_point_id="UPTEST0001",
        start=now - timedelta(days=3),
        end=now - timedelta(days=2),
    )


def _notification(now) -> Notification:
    return Notification.objects.create(
        status=Notification.Status.PROCESSED, received_at=now, body=b"x", sha256="0" * 64
    )


def test_a_gap_fill_waits_for_the_budget_and_never_fails(
    now, pge, authorization, published, scheduled_starved, settings
):
    url = _gap_url(now)
    pge.get(url, body=espi_feed(), content_type="application/atom+xml")
    fetch = _fetch(url, now=now)
    before = hour_window(timezone.now()).end
    # Far more runs than the poison limit: waiting is not failing.
    for _ in range(settings.GASCAP_INGEST_POISON_LIMIT + 3):
        result = fetches.fetch_run(fetch_id=fetch.pk, now=now)
        assert (result.status, result.reason) == (Fetch.Status.RETRYING, "budget_wait")
        assert result.retry_in and 0 < result.retry_in < settings.CELERY_VISIBILITY_TIMEOUT
    fetch.refresh_from_db()
    assert fetch.status == Fetch.Status.RETRYING
    assert fetch.reason == "budget_wait"
    assert "budget" in fetch.error
    assert fetch.attempts == 0
    assert fetch.next_attempt_at in {before, hour_window(timezone.now()).end}
    assert len(pge.calls) == 0  # nothing reached PG&E
    assert fetch.attempt_rows.count() == 0
    assert (
        budget_usage(now=timezone.now()).waits["fetch"] == settings.GASCAP_INGEST_POISON_LIMIT + 3
    )
    # The next window (here: a larger allowance) resumes it.
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0
    assert fetches.fetch_run(fetch_id=fetch.pk, now=now).status == Fetch.Status.INGESTED


def test_notified_data_is_fetched_while_scheduled_work_waits(
    now, pge, authorization, published, scheduled_starved, django_capture_on_commit_callbacks
):
    notified_url = subscription_url()
    gap_url = _gap_url(now)
    pge.get(notified_url, body=espi_feed(), content_type="application/atom+xml")
    notified = _fetch(notified_url, now=now, notification=_notification(now))
    gap = _fetch(gap_url, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        assert fetches.fetch_run(fetch_id=gap.pk, now=now).reason == "budget_wait"
        assert fetches.fetch_run(fetch_id=notified.pk, now=now).status == Fetch.Status.INGESTED
    assert [c.request.url for c in pge.calls] == [notified_url]
    # The wait was re-queued with a countdown to the window.
    args, options = next((a, o) for n, a, o in published.messages if n == "ingest.fetch_run")
    assert args == [gap.pk] and options["countdown"] > 0
    assert budget_usage(now=timezone.now()).day_calls == {"fetch": 1}


def test_a_data_request_waits_for_the_budget(
    now, pge, authorization, published, scheduled_starved, django_capture_on_commit_callbacks
):
    """The wait is on the row (RETRYING `budget_wait`), never an attempt: far more runs than
    the poison limit leave it waiting, and the next window resumes it."""
    with django_capture_on_commit_callbacks(execute=True):
        tasks.subscription_request_task.run(authorization.pk)
    row = DataRequest.objects.get()
    assert published.of("ingest.data_request_run") == [[row.pk]]
    runs = scheduled_starved.GASCAP_INGEST_POISON_LIMIT + 2
    for _ in range(runs):
        with django_capture_on_commit_callbacks(execute=True):
            result = tasks.data_request_run_task.run(row.pk)
        assert result == {"status": DataRequest.Status.RETRYING, "reason": "budget_wait"}
    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == (
        DataRequest.Status.RETRYING,
        "budget_wait",
        0,
    )
    assert "budget" in row.error and row.next_attempt_at is not None
    assert len(pge.calls) == 0
    requeued = [o for n, _, o in published.messages if n == "ingest.data_request_run"][1:]
    assert len(requeued) == runs and all(o["countdown"] > 0 for o in requeued)
    assert budget_usage(now=timezone.now()).waits == {"data_request": runs}
    # The next window (here: a larger allowance) resumes it.
    scheduled_starved.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0
    pge.get(subscription_url(correlation=None), status=202)
    assert tasks.data_request_run_task.run(row.pk)["status"] == DataRequest.Status.REQUESTED
    row.refresh_from_db()
    assert (row.status, row.attempts, row.reason) == (DataRequest.Status.REQUESTED, 1, "")


def test_every_call_of_a_data_request_is_counted_by_kind(
    now, pge, authorization, settings, published
):
    authorization.tokens_set(
        access_token=CUSTOMER_ACCESS,
        refresh_token="cust-refresh-TEST-bbbbbbbbbbbb",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    authorization.save()
    pge.post(
        TOKEN_URL,
        json={"access_token": "cust-access-TEST-new-eeee", "expires_in": 3600, "scope": "x"},
    )
    pge.get(subscription_url(correlation=None), status=202)
    published.drain_after(tasks.subscription_request_task.run, authorization.pk)
    assert DataRequest.objects.get().status == DataRequest.Status.REQUESTED
    usage = budget_usage(now=timezone.now())
    assert usage.day_calls == {"token_refresh": 1, "data_request": 1}
    assert usage.day_total == 2


def test_auto_mode_uses_bulk_when_subscription_requests_would_not_fit(settings):
    settings.GASCAP_PGE_BUDGET_PER_DAY = 20000
    settings.GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE = 0.5
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "auto"
    assert daily_request_mode(consents=3332) == "subscription"  # 3 x 3332 + 2 = 9998
    assert daily_request_mode(consents=3333) == "bulk"  # 10001 > 10000
    assert daily_calls_projection(consents=10_000).subscription_calls == 30_002
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "subscription"
    assert daily_request_mode(consents=10_000) == "subscription"
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "sometimes"
    with pytest.raises(ValueError):
        daily_request_mode(consents=1)


def test_auto_is_the_default_mode(monkeypatch):
    import importlib

    import gascap.settings.base as base

    monkeypatch.delenv("GASCAP_INGEST_DAILY_REQUEST_MODE", raising=False)
    assert importlib.reload(base).GASCAP_INGEST_DAILY_REQUEST_MODE == "auto"


def test_daily_request_in_auto_mode_goes_bulk_beyond_the_share(
    pge, authorization, client_token, published, settings
):
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "auto"
    settings.GASCAP_PGE_BUDGET_PER_DAY = 8  # one consent: 3 + 2 calls > 8 x 0.5
    pge.get(f"{API_BASE}Batch/Bulk/99999", status=202)
    assert published.drain_after(tasks.daily_data_request_task.run) == {"mode": "bulk", "queued": 1}
    bulk = DataRequest.objects.get()
    assert (bulk.kind, bulk.status, bulk.answers[0]["status"]) == (
        DataRequest.Kind.BULK,
        DataRequest.Status.REQUESTED,
        202,
    )
    settings.GASCAP_PGE_BUDGET_PER_DAY = 10
    assert tasks.daily_data_request_task.run() == {"mode": "subscription", "queued": 1}
    assert DataRequest.objects.filter(kind=DataRequest.Kind.SUBSCRIPTION).count() == 1


def test_a_bulk_request_waits_for_the_budget(
    pge, client_token, published, scheduled_starved, django_capture_on_commit_callbacks
):
    scheduled_starved.GASCAP_INGEST_DAILY_REQUEST_MODE = "bulk"
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.daily_data_request_task.run() == {"mode": "bulk", "queued": 1}
    row = DataRequest.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.data_request_run_task.run(row.pk)["reason"] == "budget_wait"
    assert len(pge.calls) == 0
    row.refresh_from_db()
    assert (row.kind, row.status, row.reason, row.attempts) == (
        DataRequest.Kind.BULK,
        DataRequest.Status.RETRYING,
        "budget_wait",
        0,
    )
    [(name, args, options)] = published.messages[1:]
    assert (name, args) == ("ingest.data_request_run", [row.pk]) and options["countdown"] > 0
    assert budget_usage(now=timezone.now()).waits == {"bulk_request": 1}


def test_pge_budget_command_shows_calls_by_kind_and_projections(
    now, pge, authorization, client_token
):
    from ingest.readings import document_import

    url = bulk_url()
    pge.get(url, body=espi_feed(), content_type="application/atom+xml")
    fetch = Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.BULK,
        status=Fetch.Status.PENDING,
        created_at=now,
    )
    fetches.fetch_run(fetch_id=fetch.pk, now=now)
    document_import(source=io.BytesIO(espi_feed()), source_label="t", now=now)
    out = io.StringIO()
    call_command("pge_budget", stdout=out)
    text = out.getvalue()
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert lines["fetch"] == ["1", "1"]
    assert lines["token_refresh"] == ["0", "0"]
    assert lines["total"] == ["1", "1"]
    assert lines["cap"] == ["2000", "20000"]
    assert "active consents: 1" in text
    assert "subscription: 5" in text  # 3 calls per consent + the daily poll's 2
    assert "bulk:         6" in text
    assert "PG&E day" in text and "T17:00:00-0" in text  # 5 p.m. Pacific (-07:00 / -08:00)
