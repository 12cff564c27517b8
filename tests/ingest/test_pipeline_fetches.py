"""Pipeline stage 2, fetch: a fetch run against a mocked PG&E with the token its URL names
(customer or client), retries and backoff, permanent errors, 403 → refresh → retry once,
redirects refused, claims, redelivery and poison (docs/reliability.md tests 24-25, 28,
35-37)."""

from __future__ import annotations

import logging

import pytest
import responses
from django.utils import timezone

from ingest import fetch_rows, notifications
from ingest.models import Fetch, FetchAttempt, IntervalReading
from tests.builders import authorization_make, customer_make
from tests.ingest.conftest import (
    ALL_SECRETS,
    API_BASE,
    CLIENT_TOKEN,
    CUSTOMER_ACCESS,
    REFRESHED_ACCESS,
    TOKEN_URL,
    batchlist,
    bulk_url,
    espi_feed,
    subscription_url,
)
from tests.ingest.pipeline_steps import (
    FEED_TYPE,
    bearer,
    process,
    run,
    stored,
    subscription_fetch,
)

pytestmark = pytest.mark.django_db


def test_notification_to_readings_with_the_customer_token(
    now, pge, authorization, published, django_capture_on_commit_callbacks, caplog
):
    pge.get(
        subscription_url(),
        body=espi_feed(),
        content_type=FEED_TYPE,
        match=[bearer(CUSTOMER_ACCESS)],
    )
    notification = stored(batchlist(subscription_url()), now)
    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        notifications.notification_process(notification_id=notification.pk, now=now)
    with caplog.at_level(logging.DEBUG):
        assert published.drain() == 1
    fetch = Fetch.objects.get()
    assert fetch.status == Fetch.Status.INGESTED, fetch.error
    assert fetch.readings_new == 24
    assert IntervalReading.objects.count() == 24
    attempt = FetchAttempt.objects.get()
    assert attempt.status_code == 200
    assert attempt.outcome == FetchAttempt.Outcome.OK
    assert attempt.bytes_received == len(espi_feed())
    assert attempt.duration_ms >= 0
    for secret in ALL_SECRETS:
        assert secret not in caplog.text
        assert secret not in repr(published.messages)
        assert secret not in attempt.error_excerpt + fetch.error


def test_bulk_uses_the_client_token(
    now, pge, client_token, authorization, django_capture_on_commit_callbacks
):
    pge.get(bulk_url(), body=espi_feed(), content_type=FEED_TYPE, match=[bearer(CLIENT_TOKEN)])
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=bulk_url(), kind=Fetch.Kind.BULK, subscription_id="", now=now
    )
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    assert IntervalReading.objects.count() == 24


def test_token_binding_over_many_authorizations(
    now, pge, client_token, django_capture_on_commit_callbacks
):
    """docs/reliability.md test 25 in small: each Subscription URL only ever with its own token."""
    seen: list[tuple[str, str]] = []
    tokens = {}
    for i in range(5):
        sid = f"SUBTESTBIND{i}"
        tokens[sid] = f"cust-access-TEST-bind-{i}-xxxxxxxx"
        authorization_make(
            customer=customer_make(display_name=f"Test {i}"),
            subscription_id=sid,
            access_token=tokens[sid],
            refresh_token=f"r-{i}-yyyyyyyy",
            expires_at=now.replace(year=2099),
        )

    def answer(request):  # type: ignore[no-untyped-def]
        path = request.url.split("/Batch/", 1)[1]
        seen.append((path, request.headers["Authorization"]))
        return (204, {}, b"")

    pge.add_callback(responses.GET, f"{API_BASE}Batch/Subscription/SUBTESTBIND0", callback=answer)
    for i in range(1, 5):
        pge.add_callback(
            responses.GET, f"{API_BASE}Batch/Subscription/SUBTESTBIND{i}", callback=answer
        )
    pge.add_callback(responses.GET, bulk_url(), callback=answer)
    urls = [subscription_url(f"SUBTESTBIND{i % 5}") for i in range(5)] + [bulk_url()]
    notification = stored(batchlist(*urls), now)
    process(notification, now, django_capture_on_commit_callbacks)
    for fetch in Fetch.objects.all():
        run(fetch, now, django_capture_on_commit_callbacks)
    assert len(seen) == 6
    for path, header in seen:
        if path.startswith("Bulk/"):
            assert header == f"Bearer {CLIENT_TOKEN}"
        else:
            assert header == f"Bearer {tokens[path.split('/')[1].split('?')[0]]}"


def test_unknown_subscription_is_failed_without_network(
    now, pge, django_capture_on_commit_callbacks
):
    fetch = subscription_fetch(now, url=subscription_url("SUBTESTNOBODY"))
    fetch.subscription_id = "SUBTESTNOBODY"
    fetch.save()
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.FAILED
    assert result.reason == "unknown_subscription"
    assert len(pge.calls) == 0
    assert FetchAttempt.objects.count() == 0


def test_transient_failures_retry_with_backoff_then_succeed(
    now, pge, authorization, settings, published, django_capture_on_commit_callbacks
):
    for _ in range(3):
        pge.get(subscription_url(), status=503, body=b"busy")
    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch = subscription_fetch(now)
    for attempt in range(3):
        result = run(fetch, now, django_capture_on_commit_callbacks)
        assert result.status == Fetch.Status.RETRYING
        ceiling = min(
            settings.GASCAP_INGEST_BACKOFF_CAP, settings.GASCAP_INGEST_BACKOFF_BASE * 2**attempt
        )
        assert 0 <= result.retry_in <= ceiling
        name, args, options = published.messages[-1]
        assert (name, args) == ("ingest.fetch_run", [fetch.pk])
        assert options["countdown"] == result.retry_in
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    fetch.refresh_from_db()
    assert fetch.attempts == 4
    outcomes = list(fetch.attempt_rows.values_list("status_code", "outcome"))
    assert outcomes == [(503, "TRANSIENT")] * 3 + [(200, "OK")]
    assert IntervalReading.objects.count() == 24


def test_retry_after_is_honoured(now, pge, authorization, django_capture_on_commit_callbacks):
    pge.get(subscription_url(), status=429, headers={"Retry-After": "5"})
    result = run(subscription_fetch(now), now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.RETRYING
    assert result.retry_in >= 5


def test_transient_failures_end_after_the_limit(
    now, pge, authorization, settings, django_capture_on_commit_callbacks
):
    settings.GASCAP_INGEST_POISON_LIMIT = 3
    pge.get(subscription_url(), status=503)
    fetch = subscription_fetch(now)
    statuses = [run(fetch, now, django_capture_on_commit_callbacks).status for _ in range(3)]
    assert statuses == ["RETRYING", "RETRYING", "FAILED"]
    fetch.refresh_from_db()
    assert fetch.reason == "retries_exhausted"


@pytest.mark.parametrize("status", [400, 404])
def test_permanent_errors_fail_after_one_attempt(
    now, pge, authorization, published, status, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), status=status, body=b"no such thing")
    fetch = subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.FAILED
    fetch.refresh_from_db()
    assert fetch.error
    assert fetch.attempt_rows.count() == 1
    assert published.of("ingest.fetch_run") == []


def _token_answer(token: str) -> dict[str, object]:
    return {
        "access_token": token,
        "refresh_token": "cust-refresh-TEST-rotated-eeee",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "FB=4",
    }


def test_403_refreshes_once_and_retries_once(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), status=403, match=[bearer(CUSTOMER_ACCESS)])
    pge.post(TOKEN_URL, json=_token_answer(REFRESHED_ACCESS))
    pge.get(
        subscription_url(),
        body=espi_feed(),
        content_type=FEED_TYPE,
        match=[bearer(REFRESHED_ACCESS)],
    )
    fetch = subscription_fetch(now)
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    assert [a.status_code for a in fetch.attempt_rows.all()] == [403, 200]
    token_calls = [c for c in pge.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1


def test_403_after_refresh_stops_and_flags_the_authorization(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), status=403)
    pge.post(TOKEN_URL, json=_token_answer(REFRESHED_ACCESS))
    fetch = subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "forbidden")
    assert fetch.attempt_rows.count() == 2
    authorization.refresh_from_db()
    assert authorization.status == authorization.Status.NEEDS_RECONSENT


def test_redirect_is_not_followed(now, pge, authorization, django_capture_on_commit_callbacks):
    pge.get(subscription_url(), status=302, headers={"Location": "https://attacker.example/steal"})
    fetch = subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "unexpected_redirect")
    assert [c.request.url for c in pge.calls] == [subscription_url()]


def test_204_is_an_empty_success(now, pge, authorization, django_capture_on_commit_callbacks):
    pge.get(subscription_url(), status=204)
    assert run(subscription_fetch(now), now, django_capture_on_commit_callbacks).status == (
        Fetch.Status.INGESTED
    )


def test_a_running_fetch_is_not_run_twice(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    fetch = subscription_fetch(now)
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.RUNNING, started_at=now, runner_task_id="task-a"
    )
    result = run(fetch, now, django_capture_on_commit_callbacks, task_id="task-b")
    assert result.reason == "not_claimed"
    assert len(pge.calls) == 0


def test_redelivery_of_the_same_message_takes_over(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch = subscription_fetch(now)
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.RUNNING, started_at=now, runner_task_id="task-a", attempts=1
    )
    result = run(fetch, now, django_capture_on_commit_callbacks, task_id="task-a")
    assert result.status == Fetch.Status.INGESTED


def test_poison_limit_stops_a_crashing_fetch(
    now, pge, authorization, settings, django_capture_on_commit_callbacks
):
    fetch = subscription_fetch(now)
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.RUNNING,
        runner_task_id="task-a",
        attempts=settings.GASCAP_INGEST_POISON_LIMIT,
        started_at=now,
    )
    result = run(fetch, now, django_capture_on_commit_callbacks, task_id="task-a")
    assert result.status == Fetch.Status.POISONED
    assert len(pge.calls) == 0


def test_fetch_task_runs_with_a_fresh_clock(now, pge, authorization, published):
    from ingest import tasks

    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch = subscription_fetch(timezone.now())
    outcome = tasks.fetch_run_task.run(fetch.pk)
    assert outcome["status"] == Fetch.Status.INGESTED
