"""Processing a stored BatchList into fetches, and running fetches against a mocked PG&E:
allow-list, token binding, retries, 403 handling, ReadingTypes, replays, poison
(docs/reliability.md tests 9-10, 17, 22-25, 28, 35-37, 42, 45)."""

from __future__ import annotations

import hashlib
import json
import logging
import random

import pytest
import responses
from django.db.models import Sum
from django.utils import timezone
from responses import matchers

from ingest import fetches, notifications
from ingest.models import Fetch, FetchAttempt, IntervalReading, Notification, ReadingRevision
from tests.ingest.conftest import (
    ALL_SECRETS,
    API_BASE,
    CLIENT_TOKEN,
    CUSTOMER_ACCESS,
    READING_TYPE_HREF,
    REFRESHED_ACCESS,
    SID,
    TOKEN_URL,
    batchlist,
    bulk_url,
    espi_feed,
    reading_type_feed,
    subscription_url,
)

pytestmark = pytest.mark.django_db

FEED_TYPE = "application/atom+xml"


def stored(body: bytes, now) -> Notification:
    return Notification.objects.create(
        status=Notification.Status.RECEIVED,
        received_at=now,
        body=body,
        body_size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )


def bearer(token: str):
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def process(notification: Notification, now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return notifications.notification_process(notification_id=notification.pk, now=now)


def run(fetch: Fetch, now, django_capture_on_commit_callbacks, task_id=None):
    with django_capture_on_commit_callbacks(execute=True):
        return fetches.fetch_run(fetch_id=fetch.pk, now=now, task_id=task_id)


def readings_checksum() -> tuple[int, int]:
    agg = IntervalReading.objects.aggregate(total=Sum("value"))
    return IntervalReading.objects.count(), agg["total"] or 0


# --- Processing ------------------------------------------------------------------------------


HOSTILE_URLS = [
    "https://attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "http://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com@attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
    "https://user:pw@api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com.attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
    "https://api.pge.com:8443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com./GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com\\@attacker.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/..%2F..%2F..%2Fadmin",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/../../../other/Batch/Bulk/1",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resourceX/Batch/Bulk/99999",
    "https://127.0.0.1/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://[::1]/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://xn--pge-xxa.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://API.PGE.COM%2e/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/99999",
    "https://api.pge.com/datacustodian/oauth/v2/token",
    "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/UnknownThing/1",
    "file:///etc/passwd",
]


def test_batchlist_becomes_one_fetch_per_distinct_resource(
    now, published, django_capture_on_commit_callbacks
):
    zero = bulk_url("00000000-0000-0000-0000-000000000000")
    body = batchlist(subscription_url(), bulk_url(), subscription_url(), zero)
    notification = stored(body, now)
    result = process(notification, now, django_capture_on_commit_callbacks)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PROCESSED
    assert notification.skipped_count == 1  # the all-zero correlation id placeholder
    rows = {f.url: f for f in Fetch.objects.all()}
    assert set(rows) == {subscription_url(), bulk_url()}
    assert rows[subscription_url()].kind == Fetch.Kind.SUBSCRIPTION
    assert rows[subscription_url()].subscription_id == SID
    assert rows[bulk_url()].kind == Fetch.Kind.BULK
    assert sorted(a[0] for a in published.of("ingest.fetch_run")) == sorted(
        f.pk for f in rows.values()
    )
    assert result.fetch_ids_queued


def test_hostile_urls_are_refused_recorded_and_never_contacted(
    now, published, pge, django_capture_on_commit_callbacks, client_token, authorization
):
    notification = stored(batchlist(*HOSTILE_URLS), now)
    process(notification, now, django_capture_on_commit_callbacks)
    refused = Fetch.objects.filter(status=Fetch.Status.REFUSED)
    assert refused.count() == len(HOSTILE_URLS)
    assert set(refused.values_list("reason", flat=True)) <= {"url_refused", "unsupported_resource"}
    assert published.of("ingest.fetch_run") == []
    published.drain()
    assert len(pge.calls) == 0


def test_allow_list_property_over_random_mutations(now):
    """docs/reliability.md test 22, in the pipeline's own words: a URL is accepted only when it is
    exactly under the API base; a few thousand random mutations of a good URL."""
    from gascap.pge.errors import PgeUrlRefused
    from ingest.pge_resources import url_check

    good = subscription_url()
    mutations = [
        lambda u: u.replace(
            "https://", random.choice(["http://", "https:/", "ftp://", "https:///"])
        ),
        lambda u: u.replace(
            "api.pge.com",
            random.choice(
                [
                    "api.pge.com.",
                    "apI.pge.co",
                    "api.pge.com@evil.test",
                    "evil.test#api.pge.com",
                    "api%2Epge.com",
                    "api.pge.com:444",
                    "0x7f.0.0.1",
                    "2130706433",
                    "[::ffff:7f00:1]",
                ]
            ),
        ),
        lambda u: u.replace(
            "/resource/",
            random.choice(
                [
                    "/resource/../",
                    "/resource/%2e%2e/",
                    "/resource%2F",
                    "/resource\\",
                    "/resource//",
                    "/Resource/",
                ]
            ),
        ),
        lambda u: u + random.choice(["#frag", " ", "\t", "\x00"]),
    ]
    rng = random.Random(7)
    random.seed(7)  # the mutations draw from the module RNG
    for _ in range(3000):
        url = good
        for mutate in rng.sample(mutations, rng.randint(1, len(mutations))):
            url = mutate(url)
        if url == good:
            continue
        with pytest.raises(PgeUrlRefused):
            url_check(url)
    url_check(good)


def test_processing_twice_does_nothing_the_second_time(
    now, published, django_capture_on_commit_callbacks
):
    notification = stored(batchlist(bulk_url()), now)
    process(notification, now, django_capture_on_commit_callbacks)
    again = process(notification, now, django_capture_on_commit_callbacks)
    assert again.status == Notification.Status.PROCESSED
    assert Fetch.objects.count() == 1
    assert len(published.of("ingest.fetch_run")) == 1


def test_fetches_coalesce_across_notifications(now, published, django_capture_on_commit_callbacks):
    first = stored(batchlist(bulk_url(), subscription_url()), now)
    second = stored(batchlist(subscription_url(), bulk_url()) + b" ", now)
    process(first, now, django_capture_on_commit_callbacks)
    result = process(second, now, django_capture_on_commit_callbacks)
    assert Fetch.objects.count() == 2
    assert result.fetches_coalesced == 2
    assert len(published.of("ingest.fetch_run")) == 2


def test_poisoned_notification_stops(now, settings, django_capture_on_commit_callbacks):
    notification = stored(batchlist(bulk_url()), now)
    Notification.objects.filter(pk=notification.pk).update(
        attempts=settings.GASCAP_INGEST_POISON_LIMIT
    )
    result = process(notification, now, django_capture_on_commit_callbacks)
    assert result.status == Notification.Status.POISONED
    assert Fetch.objects.count() == 0


# --- Fetching --------------------------------------------------------------------------------


def _subscription_fetch(now, url=None) -> Fetch:
    fetch, _ = notifications.fetch_open_or_create(
        url=url or subscription_url(), kind=Fetch.Kind.SUBSCRIPTION, subscription_id=SID, now=now
    )
    return fetch


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
    fetch, _ = notifications.fetch_open_or_create(
        url=bulk_url(), kind=Fetch.Kind.BULK, subscription_id="", now=now
    )
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    assert IntervalReading.objects.count() == 24


def test_token_binding_over_many_authorizations(
    now, pge, client_token, django_capture_on_commit_callbacks
):
    """docs/reliability.md test 25 in small: each Subscription URL only ever with its own token."""
    from customers.models import Authorization, Customer

    seen: list[tuple[str, str]] = []
    tokens = {}
    for i in range(5):
        sid = f"SUBTESTBIND{i}"
        customer = Customer.objects.create(display_name=f"Test {i}")
        auth = Authorization.objects.create(
            customer=customer, status=Authorization.Status.ACTIVE, subscription_id=sid
        )
        tokens[sid] = f"cust-access-TEST-bind-{i}-xxxxxxxx"
        auth.tokens_set(
            access_token=tokens[sid],
            refresh_token=f"r-{i}-yyyyyyyy",
            expires_at=now.replace(year=2099),
        )
        auth.save()

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
    fetch = _subscription_fetch(now, url=subscription_url("SUBTESTNOBODY"))
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
    fetch = _subscription_fetch(now)
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
    result = run(_subscription_fetch(now), now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.RETRYING
    assert result.retry_in >= 5


def test_transient_failures_end_after_the_limit(
    now, pge, authorization, settings, django_capture_on_commit_callbacks
):
    settings.GASCAP_INGEST_POISON_LIMIT = 3
    pge.get(subscription_url(), status=503)
    fetch = _subscription_fetch(now)
    statuses = [run(fetch, now, django_capture_on_commit_callbacks).status for _ in range(3)]
    assert statuses == ["RETRYING", "RETRYING", "FAILED"]
    fetch.refresh_from_db()
    assert fetch.reason == "retries_exhausted"


@pytest.mark.parametrize("status", [400, 404])
def test_permanent_errors_fail_after_one_attempt(
    now, pge, authorization, published, status, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), status=status, body=b"no such thing")
    fetch = _subscription_fetch(now)
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
    fetch = _subscription_fetch(now)
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    assert [a.status_code for a in fetch.attempt_rows.all()] == [403, 200]
    token_calls = [c for c in pge.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1


def test_403_after_refresh_stops_and_flags_the_authorization(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), status=403)
    pge.post(TOKEN_URL, json=_token_answer(REFRESHED_ACCESS))
    fetch = _subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "forbidden")
    assert fetch.attempt_rows.count() == 2
    authorization.refresh_from_db()
    assert authorization.status == authorization.Status.NEEDS_RECONSENT


def test_redirect_is_not_followed(now, pge, authorization, django_capture_on_commit_callbacks):
    pge.get(subscription_url(), status=302, headers={"Location": "https://attacker.example/steal"})
    fetch = _subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "unexpected_redirect")
    assert [c.request.url for c in pge.calls] == [subscription_url()]


def test_hostile_document_is_rejected_without_retry(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>&a;</id></feed>'
    )
    pge.get(subscription_url(), body=hostile, content_type=FEED_TYPE)
    result = run(_subscription_fetch(now), now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "parse_rejected")
    assert IntervalReading.objects.count() == 0


def test_204_is_an_empty_success(now, pge, authorization, django_capture_on_commit_callbacks):
    pge.get(subscription_url(), status=204)
    assert run(_subscription_fetch(now), now, django_capture_on_commit_callbacks).status == (
        Fetch.Status.INGESTED
    )


def test_missing_reading_type_is_fetched_with_the_same_token(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(
        subscription_url(),
        body=espi_feed(with_reading_type=False),
        content_type=FEED_TYPE,
        match=[bearer(CUSTOMER_ACCESS)],
    )
    pge.get(
        READING_TYPE_HREF,
        body=reading_type_feed(),
        content_type=FEED_TYPE,
        match=[bearer(CUSTOMER_ACCESS)],
    )
    fetch = _subscription_fetch(now)
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    from ingest.models import MeterReading

    series = MeterReading.objects.get()
    assert series.reading_type is not None
    assert series.reading_type.uom == 72
    assert fetch.attempt_rows.count() == 2


def test_replays_write_nothing(now, pge, authorization, django_capture_on_commit_callbacks):
    from ingest.sweeper import fetches_replay

    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch = _subscription_fetch(now)
    run(fetch, now, django_capture_on_commit_callbacks)
    before = readings_checksum()
    for _ in range(2):
        assert fetches_replay(fetch_ids=[fetch.pk]) == 1
        run(fetch, now, django_capture_on_commit_callbacks)
        fetch.refresh_from_db()
        assert fetch.status == Fetch.Status.INGESTED
        assert (fetch.readings_new, fetch.readings_updated) == (0, 0)
        assert fetch.readings_unchanged == 24
    assert readings_checksum() == before
    assert ReadingRevision.objects.count() == 0


def test_a_running_fetch_is_not_run_twice(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    fetch = _subscription_fetch(now)
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
    fetch = _subscription_fetch(now)
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.RUNNING, started_at=now, runner_task_id="task-a", attempts=1
    )
    result = run(fetch, now, django_capture_on_commit_callbacks, task_id="task-a")
    assert result.status == Fetch.Status.INGESTED


def test_poison_limit_stops_a_crashing_fetch(
    now, pge, authorization, settings, django_capture_on_commit_callbacks
):
    fetch = _subscription_fetch(now)
    Fetch.objects.filter(pk=fetch.pk).update(
        status=Fetch.Status.RUNNING,
        runner_task_id="task-a",
        attempts=settings.GASCAP_INGEST_POISON_LIMIT,
        started_at=now,
    )
    result = run(fetch, now, django_capture_on_commit_callbacks, task_id="task-a")
    assert result.status == Fetch.Status.POISONED
    assert len(pge.calls) == 0


def test_failure_mid_document_stores_nothing_then_retry_stores_all(
    now, pge, authorization, monkeypatch, django_capture_on_commit_callbacks
):
    """docs/reliability.md test 45: one transaction per document."""
    import ingest.readings as readings

    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    real = readings.document_import

    def crash(**kwargs):  # type: ignore[no-untyped-def]
        from django.db import transaction

        with transaction.atomic():
            real(**kwargs)
            raise RuntimeError("injected failure after the rows were written")

    monkeypatch.setattr(readings, "document_import", crash)
    fetch = _subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.FAILED
    assert IntervalReading.objects.count() == 0
    fetch.refresh_from_db()
    assert "RuntimeError" in fetch.traceback
    monkeypatch.setattr(readings, "document_import", real)
    from ingest.sweeper import fetches_replay

    fetches_replay(fetch_ids=[fetch.pk])
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    assert IntervalReading.objects.count() == 24


def test_task_messages_carry_only_ids(now, published, django_capture_on_commit_callbacks):
    notification = stored(batchlist(subscription_url(), bulk_url()), now)
    process(notification, now, django_capture_on_commit_callbacks)
    for name, args, _options in published.messages:
        assert all(isinstance(a, int) for a in args), (name, args)
        assert json.dumps(args)


def test_fetch_task_runs_with_a_fresh_clock(now, pge, authorization, published):
    from ingest import tasks

    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch = _subscription_fetch(timezone.now())
    outcome = tasks.fetch_run.run(fetch.pk)
    assert outcome["status"] == Fetch.Status.INGESTED
