"""Data requests are rows (issue 12): one per request a consent or the daily schedule makes,
retried like a fetch (backoff, the poison limit), resumed after the last window PG&E
answered, swept when their message was lost or their runner died, and replayed by an
operator. PG&E is mocked at its HTTP boundary (`responses`); the sandbox and real workers are
the reliability suite's."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from customers.models import Authorization
from gascap import worker_heartbeat
from ingest import data_request_runs, replay, sweeper, tasks
from ingest.models import DataRequest, Fetch
from tests.ingest.conftest import (
    CUSTOMER_ACCESS,
    REFRESHED_ACCESS,
    SID,
    TOKEN_URL,
    espi_feed,
    subscription_url,
)

pytestmark = pytest.mark.django_db

REQUEST_URL = subscription_url(correlation=None)
FEED_TYPE = "application/atom+xml"


def _consent_request(authorization, published) -> DataRequest:
    """What a consent does: `ingest.subscription_request`, then every message it led to."""
    published.drain_after(tasks.subscription_request_task.run, authorization.pk)
    return DataRequest.objects.get()


def _window(call) -> tuple[int, int]:
    query = parse_qs(urlsplit(call.request.url).query)
    return int(query["published-min"][0]), int(query["published-max"][0])


def test_a_transient_failure_is_retried_with_backoff_and_ends_requested(
    pge, authorization, published
):
    pge.get(REQUEST_URL, status=503)
    pge.get(REQUEST_URL, status=503)
    pge.get(REQUEST_URL, status=202)
    row = _consent_request(authorization, published)
    assert (row.status, row.origin, row.attempts, row.reason) == (
        DataRequest.Status.REQUESTED,
        DataRequest.Origin.CONSENT,
        3,
        "",
    )
    assert row.answers[0]["status"] == 202 and row.windows == 1
    assert row.finished_at is not None and row.requested_until == row.end
    assert len(pge.calls) == 3
    assert Fetch.objects.count() == 0  # a 202 records nothing: the notification brings the data


def test_each_retry_is_published_with_a_countdown(
    pge, authorization, published, django_capture_on_commit_callbacks
):
    pge.get(REQUEST_URL, status=503)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.subscription_request_task.run(authorization.pk)
    row = DataRequest.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.data_request_run_task.run(row.pk)
    assert (result["status"], result["reason"]) == (DataRequest.Status.RETRYING, "http_503")
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DataRequest.Status.RETRYING, 1)
    assert row.next_attempt_at is not None and row.next_attempt_at > row.started_at
    [first, retry] = [(a, o) for n, a, o in published.messages if n == "ingest.data_request_run"]
    assert first[0] == retry[0] == [row.pk]
    assert retry[1]["countdown"] is not None and retry[1]["queue"] == "pge_fetch"


def test_a_request_that_keeps_failing_ends_failed_after_the_poison_limit(
    pge, authorization, published, settings
):
    pge.get(REQUEST_URL, status=503)
    row = _consent_request(authorization, published)
    limit = settings.GASCAP_INGEST_POISON_LIMIT
    assert (row.status, row.reason, row.attempts) == (
        DataRequest.Status.FAILED,
        "retries_exhausted",
        limit,
    )
    assert "http_503" in row.error
    assert len(pge.calls) == limit


def test_a_request_started_too_often_without_finishing_is_poisoned(
    pge, authorization, published, settings
):
    row = DataRequest.objects.create(
        kind=DataRequest.Kind.SUBSCRIPTION,
        origin=DataRequest.Origin.DAILY,
        authorization=authorization,
        subscription_id=SID,
        end=timezone.now(),
        status=DataRequest.Status.RETRYING,
        reason="runner_lost",
        attempts=settings.GASCAP_INGEST_POISON_LIMIT,
        created_at=timezone.now(),
    )
    result = tasks.data_request_run_task.run(row.pk)
    assert (result["status"], result["reason"]) == (DataRequest.Status.POISONED, "poison_limit")
    assert len(pge.calls) == 0


def test_a_retried_request_resumes_after_the_last_window_answered(
    now, pge, authorization, published, settings
):
    settings.GASCAP_INGEST_REQUEST_MAX_DAYS = 20  # HistoryLength 30 days: two windows
    pge.get(REQUEST_URL, status=202)
    pge.get(REQUEST_URL, status=503)
    pge.get(REQUEST_URL, status=202)
    row = _consent_request(authorization, published)
    assert row.status == DataRequest.Status.REQUESTED and row.attempts == 2
    windows = [_window(c) for c in pge.calls]
    # The first window once; the second twice (503, then 202): never the first again.
    assert windows[1] == windows[2] and windows[0][1] == windows[1][0]
    assert [a["status"] for a in row.answers] == [202, 202] and row.windows == 2


def test_an_answer_with_the_data_is_imported_and_linked(pge, authorization, published):
    pge.get(REQUEST_URL, body=espi_feed(), content_type=FEED_TYPE)
    row = _consent_request(authorization, published)
    fetch = Fetch.objects.get()
    assert (row.status, fetch.status, fetch.data_request_id) == (
        DataRequest.Status.INGESTED,
        Fetch.Status.INGESTED,
        row.pk,
    )
    assert row.answers[0]["fetch"] == fetch.pk


def test_an_unexpected_answer_fails_the_request_with_the_fetchs_reason(
    pge, authorization, published
):
    pge.get(REQUEST_URL, status=204)
    row = _consent_request(authorization, published)
    assert (row.status, row.reason, row.attempts) == (
        DataRequest.Status.FAILED,
        "unexpected_status",
        1,
    )
    assert "204" in row.error and str(Fetch.objects.get().pk) in row.error


def test_a_403_refreshes_once_and_retries_once(pge, authorization, published):
    pge.get(REQUEST_URL, status=403)
    pge.post(TOKEN_URL, json={"access_token": REFRESHED_ACCESS, "expires_in": 3600})
    pge.get(REQUEST_URL, status=202)
    row = _consent_request(authorization, published)
    assert row.status == DataRequest.Status.REQUESTED and row.attempts == 1
    tokens = [
        c.request.headers.get("Authorization") for c in pge.calls if c.request.method == "GET"
    ]
    assert tokens == [f"Bearer {CUSTOMER_ACCESS}", f"Bearer {REFRESHED_ACCESS}"]


def test_a_403_with_a_fresh_token_ends_the_consent_and_fails_the_request(
    pge, authorization, published
):
    pge.get(REQUEST_URL, status=403)
    pge.post(TOKEN_URL, json={"access_token": REFRESHED_ACCESS, "expires_in": 3600})
    row = _consent_request(authorization, published)
    assert (row.status, row.reason) == (DataRequest.Status.FAILED, "forbidden")
    authorization.refresh_from_db()
    assert authorization.status == Authorization.Status.NEEDS_RECONSENT
    assert CUSTOMER_ACCESS not in row.error and REFRESHED_ACCESS not in row.error


def test_a_consent_and_the_daily_schedule_coalesce_into_one_open_request(
    authorization, published, settings, django_capture_on_commit_callbacks
):
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "subscription"
    with django_capture_on_commit_callbacks(execute=True):
        tasks.subscription_request_task.run(authorization.pk)
        later = timezone.now() + timedelta(hours=1)
        row, created = data_request_runs.subscription_data_request_open(
            authorization_id=authorization.pk, origin=DataRequest.Origin.DAILY, now=later
        )
    assert not created and DataRequest.objects.count() == 1
    row.refresh_from_db()
    assert row.end == later  # stretched to cover the later request
    assert published.of("ingest.data_request_run") == [[row.pk]]


def test_the_sweeper_requeues_a_request_whose_message_was_lost(published, authorization):
    old = timezone.now() - timedelta(hours=1)
    row = DataRequest.objects.create(
        kind=DataRequest.Kind.SUBSCRIPTION,
        origin=DataRequest.Origin.DAILY,
        authorization=authorization,
        subscription_id=SID,
        end=old,
        status=DataRequest.Status.PENDING,
        created_at=old,
    )
    fresh = DataRequest.objects.create(
        kind=DataRequest.Kind.BULK,
        origin=DataRequest.Origin.DAILY,
        end=timezone.now(),
        status=DataRequest.Status.PENDING,
        created_at=timezone.now(),
    )
    report = sweeper.stuck_sweep(now=timezone.now())
    assert report.data_requests == 1
    assert published.of("ingest.data_request_run") == [[row.pk]]
    assert fresh.pk not in [args[0] for args in published.of("ingest.data_request_run")]


def test_a_dead_runners_request_is_taken_over_and_finished_by_the_next_run(
    pge, authorization, published
):
    """The worker holding the row died mid-request (its heartbeat is stale): the sweeper hands
    the row back at once (not after the sweep age) and the next run finishes it."""
    row = DataRequest.objects.create(
        kind=DataRequest.Kind.SUBSCRIPTION,
        origin=DataRequest.Origin.CONSENT,
        authorization=authorization,
        subscription_id=SID,
        end=timezone.now(),
        status=DataRequest.Status.RUNNING,
        attempts=1,
        runner="dead/9/aa",
        lease="L1",
        created_at=timezone.now(),
        started_at=timezone.now(),
    )
    worker_heartbeat.runner_beat(runner="alive/1/bb", hostname="celery@test", pid=1)
    report = sweeper.stuck_sweep(now=timezone.now())
    assert (report.taken_over, report.data_requests) == (1, 1)
    row.refresh_from_db()
    assert (row.status, row.reason, row.runner, row.lease) == (
        DataRequest.Status.RETRYING,
        "runner_lost",
        "",
        "",
    )
    pge.get(REQUEST_URL, status=202)
    published.drain(on_commit=True)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DataRequest.Status.REQUESTED, 2)


def test_replay_puts_failed_and_poisoned_rows_back_and_queues_them_on_commit(
    authorization, published, django_capture_on_commit_callbacks
):
    def failed(status: str, sid: str) -> DataRequest:
        return DataRequest.objects.create(
            kind=DataRequest.Kind.SUBSCRIPTION,
            origin=DataRequest.Origin.DAILY,
            authorization=authorization,
            subscription_id=sid,
            end=timezone.now(),
            status=status,
            reason="retries_exhausted",
            error="boom",
            attempts=6,
            created_at=timezone.now(),
        )

    rows = [failed(DataRequest.Status.FAILED, SID), failed(DataRequest.Status.POISONED, "S2")]
    done = failed(DataRequest.Status.REQUESTED, "S3")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        count = replay.data_requests_replay(data_request_ids=[r.pk for r in [*rows, done]])
    assert count == 2
    assert published.of("ingest.data_request_run") == []  # not before the commit
    for callback in callbacks:
        callback()
    assert sorted(a[0] for a in published.of("ingest.data_request_run")) == [r.pk for r in rows]
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.attempts, row.reason, row.error) == (
            DataRequest.Status.PENDING,
            0,
            "",
            "",
        )
    done.refresh_from_db()
    assert done.status == DataRequest.Status.REQUESTED


def test_an_exhausted_request_raises_the_work_failed_alert_and_the_command_replays_it(
    pge, authorization, published, settings, django_capture_on_commit_callbacks
):
    from io import StringIO

    from django.core.management import call_command

    from ops.alerts import work_failed_permanently

    pge.get(REQUEST_URL, status=503)
    row = _consent_request(authorization, published)
    alert = work_failed_permanently(now=timezone.now())
    assert alert is not None
    assert "1 data request(s)" in alert.subject and f"data request {row.pk} FAILED" in alert.body
    assert "ingest/datarequest/?status__in=FAILED,POISONED" in alert.body

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("ingest_replay", "--status", "FAILED", "--what", "data_requests", stdout=out)
    assert "re-queued 1 data request(s)" in out.getvalue()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DataRequest.Status.PENDING, 0)
    assert published.of("ingest.data_request_run") == [[row.pk]]
