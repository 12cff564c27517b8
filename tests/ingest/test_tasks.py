"""Backoff, the shared rate limiter, the sweeper, schedules and the data-request tasks."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django_celery_beat.models import PeriodicTask

from gascap.pge_budget import pacing as ratelimit
from gascap.schedules import SCHEDULES, schedules_ensure
from ingest import data_requests, gap_audit, sweeper, tasks
from ingest.backoff import backoff_ceiling, backoff_delay
from ingest.models import DataRequest, Fetch, IntervalReading, Notification
from ingest.usage_point_binding import subscription_binding
from tests.builders import notification_make
from tests.ingest.conftest import (
    API_BASE,
    CLIENT_TOKEN,
    CUSTOMER_ACCESS,
    SID,
    UPID,
    batchlist,
    espi_feed,
    subscription_url,
)

# --- backoff ---------------------------------------------------------------------------------


def test_backoff_draws_stay_in_the_capped_envelope():
    rng = random.Random(1)
    base, cap = 2.0, 300.0
    for n in range(10_000):
        retry = n % 15
        delay = backoff_delay(retry=retry, base=base, cap=cap, rng=rng)
        assert 0 <= delay <= min(cap, base * 2**retry)


def test_backoff_is_jittered_and_grows():
    rng = random.Random(2)
    early = [backoff_delay(retry=0, base=1, cap=600, rng=rng) for _ in range(500)]
    late = [backoff_delay(retry=8, base=1, cap=600, rng=rng) for _ in range(500)]
    assert len(set(early)) > 400  # spread, not lock-step
    assert sum(late) / len(late) > 20 * sum(early) / len(early)
    assert backoff_ceiling(retry=100, base=1, cap=600) == 600


def test_retry_after_is_a_floor_within_the_cap():
    rng = random.Random(3)
    assert all(
        backoff_delay(retry=0, base=1, cap=60, retry_after=5, rng=rng) >= 5 for _ in range(100)
    )
    assert backoff_delay(retry=0, base=1, cap=60, retry_after=10_000, rng=rng) == 60


def test_no_countdown_reaches_the_visibility_timeout():
    # A countdown past Redis' visibility timeout would be redelivered early (test 32).
    assert django_settings.GASCAP_INGEST_BACKOFF_CAP < django_settings.CELERY_VISIBILITY_TIMEOUT
    assert django_settings.CELERY_TASK_TIME_LIMIT < django_settings.CELERY_VISIBILITY_TIMEOUT


# --- rate limiter ----------------------------------------------------------------------------


def _slots(count: int, threads: int) -> list[float]:
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(count):
            ratelimit.pge_request_slot(max_wait=30)
            with lock:
                stamps.append(time.monotonic())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sorted(stamps)


def test_file_limiter_spaces_requests_across_threads(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 20  # 50 ms apart, to keep the test short
    stamps = _slots(4, 3)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.045
    assert stamps[-1] - stamps[0] >= 0.045 * 11


def test_limiter_off_when_rate_is_zero(settings, tmp_path):
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0
    settings.REDIS_URL = ""
    settings.VAR_DIR = var = tmp_path / "var"
    var.mkdir()
    waits: list[float] = []
    for _ in range(100):
        ratelimit.pge_request_slot(sleep=waits.append)
    assert waits == []  # never waited ...
    assert list(var.iterdir()) == []  # ... and never took a slot


def test_limiter_gives_up_after_max_wait(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0.1  # one per 10 s
    ratelimit.pge_request_slot()
    with pytest.raises(ratelimit.RateLimitTimeout):
        ratelimit.pge_request_slot(max_wait=0.05)


@pytest.mark.redis
def test_redis_limiter_spaces_requests_across_processes_threads(settings):
    settings.REDIS_URL = os.environ["REDIS_URL"]
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 20
    ratelimit._redis_client = None
    ratelimit._redis().delete(ratelimit.REDIS_KEY)
    stamps = _slots(4, 3)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.04
    ratelimit._redis_client = None


# --- sweeper ---------------------------------------------------------------------------------


def _notification(status: str, received_at: datetime, **extra) -> Notification:
    body = batchlist(subscription_url()) + str(received_at).encode()
    return notification_make(body=body, received_at=received_at, status=status, **extra)


def _fetch(status: str, created_at: datetime, url: str, **extra) -> Fetch:
    return Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.BULK,
        status=status,
        created_at=created_at,
        **extra,
    )


@pytest.mark.django_db
def test_sweeper_requeues_only_stuck_rows(now, published, settings):
    settings.GASCAP_INGEST_SWEEP_AGE = 300
    old = now - timedelta(minutes=10)
    fresh = now - timedelta(seconds=30)
    lost = _notification(Notification.Status.RECEIVED, old)
    _notification(Notification.Status.RECEIVED, fresh)
    died = _notification(Notification.Status.PROCESSING, old, started_at=old)
    _notification(Notification.Status.PROCESSED, old)
    pending = _fetch(Fetch.Status.PENDING, old, f"{API_BASE}Batch/Bulk/1")
    _fetch(Fetch.Status.PENDING, fresh, f"{API_BASE}Batch/Bulk/2")
    _fetch(Fetch.Status.INGESTED, old, f"{API_BASE}Batch/Bulk/3")
    running_long = _fetch(
        Fetch.Status.RUNNING,
        old - timedelta(hours=1),
        f"{API_BASE}Batch/Bulk/4",
        started_at=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120),
    )
    _fetch(Fetch.Status.RUNNING, old, f"{API_BASE}Batch/Bulk/5", started_at=old)  # still leased
    report = sweeper.stuck_sweep(now=now)
    assert sorted(a[0] for a in published.of("ingest.notification_process")) == sorted(
        [lost.pk, died.pk]
    )
    assert sorted(a[0] for a in published.of("ingest.fetch_run")) == sorted(
        [pending.pk, running_long.pk]
    )
    assert (report.notifications, report.fetches) == (2, 2)
    died.refresh_from_db()
    assert died.status == Notification.Status.RECEIVED


@pytest.mark.django_db
def test_swept_row_whose_message_is_in_flight_runs_once(
    now, pge, client_token, published, django_capture_on_commit_callbacks
):
    """docs/reliability.md test 36: the sweeper and the broker both deliver; the body runs once."""
    from ingest import fetches

    url = f"{API_BASE}Batch/Bulk/99999?correlationID=abc"
    pge.get(url, body=espi_feed(), content_type="application/atom+xml")
    fetch = _fetch(Fetch.Status.PENDING, now - timedelta(hours=1), url)
    sweeper.stuck_sweep(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        first = fetches.fetch_run(fetch_id=fetch.pk, now=now, task_id="original")
        second = fetches.fetch_run(fetch_id=fetch.pk, now=now, task_id="swept")
    assert first.status == Fetch.Status.INGESTED
    assert second.reason == "not_claimed"
    assert len(pge.calls) == 1


# --- schedules -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_schedules_are_created_once_and_operator_edits_kept():
    first = schedules_ensure()
    assert all(created for _, created in first)
    tasks_named = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {
        "ingest.daily_data_request",
        "ingest.sweep_stuck",
        "ingest.gap_audit",
        "customers.consent_states_purge",
        "customers.authorizations_poll",
    } <= tasks_named
    assert "customers.tokens_refresh_expiring" not in tasks_named
    PeriodicTask.objects.filter(task="ingest.gap_audit").update(enabled=False)
    second = schedules_ensure()
    assert not any(created for _, created in second)
    assert PeriodicTask.objects.filter(name__in=[s.name for s in SCHEDULES]).count() == len(
        SCHEDULES
    )
    assert PeriodicTask.objects.get(task="ingest.gap_audit").enabled is False


@pytest.mark.django_db
def test_ensure_schedules_deletes_the_token_refresh_sweep_of_existing_installs():
    """Issue 10 §2: an install made before the change has the 2-minute refresh row (possibly
    renamed by its operator); ensure_schedules removes it and no schedule refreshes tokens."""
    from django_celery_beat.models import IntervalSchedule

    every, _ = IntervalSchedule.objects.get_or_create(every=120, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="customers: refresh expiring tokens",
        task="customers.tokens_refresh_expiring",
        interval=every,
    )
    PeriodicTask.objects.create(
        name="operator renamed it", task="customers.tokens_refresh_expiring", interval=every
    )
    schedules_ensure()
    assert not PeriodicTask.objects.filter(task="customers.tokens_refresh_expiring").exists()
    assert not any("refresh" in spec.task for spec in SCHEDULES)


@pytest.mark.django_db
def test_scheduled_task_names_are_registered():
    from gascap.celery import app

    app.loader.import_default_modules()
    for spec in SCHEDULES:
        if spec.task.startswith("ingest."):
            assert spec.task in app.tasks


# --- data requests ---------------------------------------------------------------------------


def _published_window(call) -> tuple[int, int]:
    query = parse_qs(urlsplit(call.request.url).query)
    return int(query["published-min"][0]), int(query["published-max"][0])


@pytest.mark.django_db
def test_first_subscription_request_covers_the_history_in_30_day_windows(
    now, pge, authorization, settings
):
    settings.GASCAP_INGEST_REQUEST_MAX_DAYS = 20
    pge.get(subscription_url(correlation=None), status=202)
    report = data_requests.subscription_data_request(authorization_id=authorization.pk, now=now)
    # HistoryLength=2592000 s (30 days) in 20-day windows: two calls.
    assert report.statuses == [202, 202]
    windows = [_published_window(c) for c in pge.calls]
    assert windows[0][0] == int((now - timedelta(days=30)).timestamp())
    assert windows[-1][1] == int(now.timestamp())
    assert windows[0][1] == windows[1][0]
    assert all(c.request.headers["Authorization"] == f"Bearer {CUSTOMER_ACCESS}" for c in pge.calls)


@pytest.mark.django_db
def test_later_requests_start_from_the_last_data(now, pge, authorization):
    from ingest.readings import document_import

    document_import(
        source=io.BytesIO(espi_feed()),
        source_label="t",
        now=now,
        binding=subscription_binding(subscription_id=SID),
    )
    last = IntervalReading.objects.order_by("-start").first().start
    pge.get(subscription_url(correlation=None), status=202)
    data_requests.subscription_data_request(authorization_id=authorization.pk, now=now)
    assert _published_window(pge.calls[0])[0] == int((last - timedelta(days=1)).timestamp())


@pytest.mark.django_db
def test_a_request_for_a_revoked_consent_fails_visibly(now, pge, authorization, published):
    authorization.status = authorization.Status.REVOKED
    authorization.save()
    published.drain_after(tasks.subscription_request_task.run, authorization.pk)
    row = DataRequest.objects.get()
    assert (row.status, row.reason, row.attempts) == (
        DataRequest.Status.FAILED,
        "authorization_revoked",
        1,
    )
    assert len(pge.calls) == 0


@pytest.mark.django_db
def test_daily_request_per_subscription(pge, authorization, published, settings):
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "subscription"
    pge.get(subscription_url(correlation=None), status=202)
    assert published.drain_after(tasks.daily_data_request_task.run) == {
        "mode": "subscription",
        "queued": 1,
    }
    row = DataRequest.objects.get()
    assert (row.kind, row.origin, row.authorization_id, row.subscription_id) == (
        DataRequest.Kind.SUBSCRIPTION,
        DataRequest.Origin.DAILY,
        authorization.pk,
        SID,
    )
    assert row.status == DataRequest.Status.REQUESTED and row.answers[0]["status"] == 202


@pytest.mark.django_db
def test_daily_request_bulk_mode(pge, client_token, settings, published):
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "bulk"
    pge.get(f"{API_BASE}Batch/Bulk/99999", status=202)
    assert published.drain_after(tasks.daily_data_request_task.run) == {"mode": "bulk", "queued": 1}
    assert DataRequest.objects.get().status == DataRequest.Status.REQUESTED
    assert pge.calls[0].request.headers["Authorization"] == f"Bearer {CLIENT_TOKEN}"


@pytest.mark.django_db
def test_gap_audit_fetches_exactly_the_missing_days(pge, authorization, published, settings):
    from zoneinfo import ZoneInfo

    from ingest.readings import document_import

    zone = ZoneInfo("America/Los_Angeles")
    settings.GASCAP_INGEST_GAP_AUDIT_DAYS = 5
    # Five Pacific days of hourly data, 2026-03-02 .. 03-06, with 03-04 missing 3 hours.
    day0 = datetime(2026, 3, 2, tzinfo=zone)
    for offset in range(5):
        start = int((day0 + timedelta(days=offset)).timestamp())
        values = [100 + i for i in range(24)]
        if offset == 2:
            values = values[:21]
        document_import(
            source=io.BytesIO(espi_feed(start=start, values=values)),
            source_label="t",
            now=day0,
            binding=subscription_binding(subscription_id=SID),
        )
    now = datetime(2026, 3, 8, 12, tzinfo=zone).astimezone(UTC)  # audit: 03-02 .. 03-06
    created = gap_audit.gap_audit(now=now)
    assert len(created) == 1
    fetch = created[0]
    query = parse_qs(urlsplit(fetch.url).query)
    assert int(query["published-min"][0]) == int(datetime(2026, 3, 4, tzinfo=zone).timestamp())
    assert int(query["published-max"][0]) == int(datetime(2026, 3, 5, tzinfo=zone).timestamp())
    assert fetch.url.startswith(f"{API_BASE}Batch/Subscription/{SID}/UsagePoint/{UPID}?")
    assert (fetch.kind, fetch.subscription_id) == (Fetch.Kind.SUBSCRIPTION, SID)
    assert published.of("ingest.fetch_run") == [[fetch.pk]]
    # Run again: the same window is already being fetched, nothing new.
    assert gap_audit.gap_audit(now=now) == []
