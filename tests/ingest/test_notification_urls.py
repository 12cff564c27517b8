"""What a notification may make gascap fetch (issue 10, part 4): only what PG&E's notifications
carry — `Batch/Bulk/{id}?correlationID=…`, `Batch/Subscription/{SID}?correlationID=…`,
Authorization notices and single resources under a subscription. A bare Batch URL would
*start* a new request at PG&E (docs/pge-protocol.md, "Data APIs"): recorded SKIPPED
`no_correlation`, never fetched. One strict grammar per URL kind, checked before any request.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from responses import matchers

from gascap.pge.batchlist import parse_batchlist
from ingest import fetch_rows, fetches, notifications
from ingest.models import Fetch, Notification
from tests.ingest.conftest import (
    API_BASE,
    CUSTOMER_ACCESS,
    READING_TYPE_HREF,
    REFRESHED_ACCESS,
    SID,
    TOKEN_URL,
    UPID,
    batchlist,
    bulk_url,
    espi_feed,
    subscription_url,
)

pytestmark = pytest.mark.django_db

FEED_TYPE = "application/atom+xml"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORRELATION = "5e1f7a2c-0000-4000-8000-00000000abcd"


def stored(body: bytes, now) -> Notification:
    return Notification.objects.create(
        status=Notification.Status.RECEIVED,
        received_at=now,
        body=body,
        body_size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )


def process(body: bytes, now, django_capture_on_commit_callbacks) -> Notification:
    notification = stored(body, now)
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notification_process(notification_id=notification.pk, now=now)
    notification.refresh_from_db()
    return notification


def run(fetch: Fetch, now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return fetches.fetch_run(fetch_id=fetch.pk, now=now)


# --- the real PG&E notification --------------------------------------------------------------


def test_the_real_pge_notification_is_fetched_with_its_correlation_ids(
    now, settings, published, django_capture_on_commit_callbacks
):
    """PG&E's only real BatchList (tests/fixtures/pge_smd_2020_notification_batchlist_malformed.xml;
    stored with a literal `\\n` after the declaration, a capture artefact): two
    `Batch/Bulk/50916?correlationID=<uuid>` URLs. Both are fetched, exactly as named."""
    raw = (FIXTURES / "pge_smd_2020_notification_batchlist_malformed.xml").read_bytes()
    body = raw.replace(b"?>\\n", b"?>\n", 1)
    urls = parse_batchlist(body)
    assert len(urls) == 2 and all("?correlationID=" in u for u in urls)
    settings.GASCAP_PGE_THIRD_PARTY_ID = "50916"
    notification = process(body, now, django_capture_on_commit_callbacks)
    assert notification.status == Notification.Status.PROCESSED
    rows = Fetch.objects.order_by("id")
    assert [(f.url, f.kind, f.status) for f in rows] == [
        (u, Fetch.Kind.BULK, Fetch.Status.PENDING) for u in urls
    ]
    assert sorted(a[0] for a in published.of("ingest.fetch_run")) == [f.pk for f in rows]


# --- a bare Batch URL starts a request: never fetched ----------------------------------------

BARE = [
    f"{API_BASE}Batch/Bulk/99999",
    f"{API_BASE}Batch/Subscription/{SID}",
    f"{API_BASE}Batch/Subscription/{SID}?published-min=1773039600&published-max=1773126000",
    f"{API_BASE}Batch/Bulk/99999?published-min=1773039600",
]


def test_bare_batch_urls_are_skipped_no_correlation_and_never_fetched(
    now, pge, published, authorization, client_token, django_capture_on_commit_callbacks
):
    notification = process(batchlist(*BARE), now, django_capture_on_commit_callbacks)
    assert notification.status == Notification.Status.PROCESSED
    rows = list(Fetch.objects.order_by("id"))
    assert [(f.url, f.status, f.reason) for f in rows] == [
        (u, Fetch.Status.SKIPPED, "no_correlation") for u in BARE
    ]
    assert published.of("ingest.fetch_run") == []
    published.drain()
    assert len(pge.calls) == 0


def test_a_bare_batch_row_replayed_is_skipped_without_a_request(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    """A row made before this rule (or edited) is checked again when it runs."""
    url = subscription_url(correlation=None)
    fetch = Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id=SID,
        status=Fetch.Status.PENDING,
        created_at=now,
    )
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.SKIPPED, "no_correlation")
    assert len(pge.calls) == 0


# --- one strict grammar per kind -------------------------------------------------------------

REFUSED = {
    # suffixes after the subscription id beyond the documented resource paths
    "batch subscription suffix": subscription_url(suffix="/RetailCustomer/1"),
    "batch subscription deep": subscription_url(suffix="/UsagePoint/UP1/MeterReading/M1"),
    "batch subscription slash": subscription_url(suffix="/"),
    "bulk suffix": f"{API_BASE}Batch/Bulk/99999/Subscription/{SID}?correlationID={CORRELATION}",
    "subscription root": f"{API_BASE}Subscription/{SID}",
    "subscription unknown child": f"{API_BASE}Subscription/{SID}/Anything",
    "usage point unknown child": f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/Customer",
    "interval block child": f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/MeterReading/M1"
    "/IntervalBlock/1773039600/IntervalReading",
    "retail customer": f"{API_BASE}Batch/RetailCustomer/92772?correlationID={CORRELATION}",
    "read service status": f"{API_BASE}ReadServiceStatus",
    "application information": f"{API_BASE}ApplicationInformation/1",
    # path tricks: refused before any request
    "dot dot semicolon": f"{API_BASE}Batch/Subscription/{SID}/..;/..;/Bulk/99999"
    f"?correlationID={CORRELATION}",
    "semicolon parameter": f"{API_BASE}Batch/Subscription/{SID};jsessionid=1"
    f"?correlationID={CORRELATION}",
    "encoded dot": f"{API_BASE}Subscription/{SID}/UsagePoint/%2e%2e/{UPID}",
    "double encoded dot": f"{API_BASE}Subscription/{SID}/UsagePoint/%252e%252e/x",
    "double encoded slash": f"{API_BASE}Subscription/{SID}/UsagePoint/a%252fb",
    "encoded nul": f"{API_BASE}Subscription/{SID}/UsagePoint/a%00",
    "unicode id": f"{API_BASE}Subscription/{SID}/UsagePoint/\u0661",
    # query parameters: only the documented ones, once each
    "extra parameter": subscription_url() + "&published-min=1",
    "unknown parameter": subscription_url() + "&redirect=https://evil.example/",
    "repeated correlation": subscription_url() + f"&correlationID={CORRELATION}",
    "lower-case correlation name": f"{API_BASE}Batch/Bulk/99999?correlationid={CORRELATION}",
    "empty correlation": f"{API_BASE}Batch/Bulk/99999?correlationID=",
    "encoded correlation": f"{API_BASE}Batch/Bulk/99999?correlationID=%2e%2e",
    "resource with correlation": f"{API_BASE}Subscription/{SID}/UsagePoint?correlationID=1",
    "non-numeric published": f"{API_BASE}Subscription/{SID}/UsagePoint?published-min=2026-03-01",
    "authorization with query": f"{API_BASE}Authorization/{SID}?status=0",
    # kinds a notification never names: gascap builds these itself
    "sync usage point": subscription_url(suffix=f"/UsagePoint/{UPID}", correlation=None)
    + "?published-min=1773039600&published-max=1773126000",
    "reading type": READING_TYPE_HREF,
    "local time parameters": f"{API_BASE}LocalTimeParameters/1",
    # another third party's batch
    "foreign bulk id": f"{API_BASE}Batch/Bulk/12345?correlationID={CORRELATION}",
}


@pytest.mark.parametrize("url", list(REFUSED.values()), ids=list(REFUSED))
def test_urls_outside_the_grammar_are_refused_before_any_request(
    url, now, pge, published, authorization, client_token, django_capture_on_commit_callbacks
):
    process(batchlist(url), now, django_capture_on_commit_callbacks)
    row = Fetch.objects.get()
    assert row.status == Fetch.Status.REFUSED, (row.status, row.reason)
    assert row.reason in {"url_refused", "unsupported_resource", "bad_query", "foreign_bulk_id"}
    assert row.error
    assert published.of("ingest.fetch_run") == []
    published.drain()
    assert len(pge.calls) == 0


ACCEPTED = {
    "bulk": (bulk_url(), Fetch.Kind.BULK, ""),
    "subscription": (subscription_url(), Fetch.Kind.SUBSCRIPTION, SID),
    "usage points": (f"{API_BASE}Subscription/{SID}/UsagePoint", Fetch.Kind.RESOURCE, SID),
    "usage point": (f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}", Fetch.Kind.RESOURCE, SID),
    "interval blocks": (
        f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/MeterReading/"
        "TnpJNmJuVnNiRG96TmpBd09qRT06MQ==/IntervalBlock"
        "?published-min=1773039600&published-max=1773126000",
        Fetch.Kind.RESOURCE,
        SID,
    ),
    "interval block": (
        f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/MeterReading/ABC/IntervalBlock/1425715200",
        Fetch.Kind.RESOURCE,
        SID,
    ),
    "usage summary": (
        f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/UsageSummary/1,436,684,400,000",
        Fetch.Kind.RESOURCE,
        SID,
    ),
    "electric power usage summary": (
        f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/ElectricPowerUsageSummary",
        Fetch.Kind.RESOURCE,
        SID,
    ),
}


@pytest.mark.parametrize(("url", "kind", "sid"), list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_what_pge_notifications_carry_is_queued(
    url, kind, sid, now, published, django_capture_on_commit_callbacks
):
    process(batchlist(url), now, django_capture_on_commit_callbacks)
    row = Fetch.objects.get()
    assert (row.url, row.kind, row.subscription_id, row.status) == (
        url,
        kind,
        sid,
        Fetch.Status.PENDING,
    )
    assert published.of("ingest.fetch_run") == [[row.pk]]


def test_a_row_whose_subscription_differs_from_its_url_is_refused(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    """The token is chosen by the URL (threat T3): an edited row cannot borrow another token."""
    url = subscription_url("SUBTESTOTHER")
    fetch = Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id=SID,
        status=Fetch.Status.PENDING,
        created_at=now,
    )
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.REFUSED
    assert len(pge.calls) == 0


def test_a_reading_type_href_that_names_a_batch_url_is_not_fetched(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    """A document's ReadingType link is followed only when it is a ReadingType: a link to a bare
    Batch URL would start a new request with the customer's token."""
    hostile = subscription_url(correlation=None)
    feed = espi_feed(with_reading_type=False).replace(READING_TYPE_HREF.encode(), hostile.encode())
    pge.get(subscription_url(), body=feed, content_type=FEED_TYPE)
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=subscription_url(), kind=Fetch.Kind.SUBSCRIPTION, subscription_id=SID, now=now
    )
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.INGESTED
    assert [c.request.url for c in pge.calls] == [subscription_url()]
    fetch.refresh_from_db()
    assert fetch.reason == "incomplete_units"
    assert "ReadingType refused" in fetch.error


# --- 403: the consent ends only for the subscription's own resources -----------------------


def _token_answer() -> dict[str, object]:
    return {
        "access_token": REFRESHED_ACCESS,
        "refresh_token": "cust-refresh-TEST-rotated-eeee",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "FB=4",
    }


def test_403_on_a_single_resource_fails_the_fetch_but_keeps_the_consent(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    """PG&E answers 403 for data outside the granted scope (docs/pge-protocol.md): a UsageSummary
    without FB 15 says nothing about the consent."""
    url = f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/UsageSummary"
    pge.get(url, status=403)
    pge.post(TOKEN_URL, json=_token_answer())
    process(batchlist(url), now, django_capture_on_commit_callbacks)
    fetch = Fetch.objects.get()
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "forbidden_resource")
    authorization.refresh_from_db()
    assert authorization.status == authorization.Status.ACTIVE


def test_403_on_a_missing_reading_type_keeps_the_consent(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), body=espi_feed(with_reading_type=False), content_type=FEED_TYPE)
    pge.get(READING_TYPE_HREF, status=403)
    pge.post(TOKEN_URL, json=_token_answer())
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=subscription_url(), kind=Fetch.Kind.SUBSCRIPTION, subscription_id=SID, now=now
    )
    run(fetch, now, django_capture_on_commit_callbacks)
    authorization.refresh_from_db()
    assert authorization.status == authorization.Status.ACTIVE


def test_403_on_the_subscription_batch_ends_the_consent(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(subscription_url(), status=403)
    pge.post(TOKEN_URL, json=_token_answer())
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=subscription_url(), kind=Fetch.Kind.SUBSCRIPTION, subscription_id=SID, now=now
    )
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "forbidden")
    authorization.refresh_from_db()
    assert authorization.status == authorization.Status.NEEDS_RECONSENT


def test_report_forbidden_ignores_urls_that_are_not_the_subscriptions_own(now, authorization):
    from customers.authorized_calls import authorization_report_forbidden

    for url in [
        f"{API_BASE}Subscription/{SID}/UsagePoint/{UPID}/UsageSummary",
        READING_TYPE_HREF,
        subscription_url("SUBTESTOTHER"),
        f"{API_BASE}Batch/Bulk/99999?correlationID={CORRELATION}",
        "https://attacker.example/Batch/Subscription/" + SID,
    ]:
        assert authorization_report_forbidden(subscription_id=SID, url=url, now=now) is False
        authorization.refresh_from_db()
        assert authorization.status == authorization.Status.ACTIVE, url
    assert authorization_report_forbidden(subscription_id=SID, url=subscription_url(), now=now)
    authorization.refresh_from_db()
    assert authorization.status == authorization.Status.NEEDS_RECONSENT


def test_customer_token_is_never_sent_to_a_refused_url(now, pge, authorization):
    """Belt and braces: a refused URL is never handed to the client either."""
    pge.get(
        f"{API_BASE}Subscription/{SID}/Anything",
        match=[matchers.header_matcher({"Authorization": f"Bearer {CUSTOMER_ACCESS}"})],
    )
    url = f"{API_BASE}Subscription/{SID}/Anything"
    fetch = Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.RESOURCE,
        subscription_id=SID,
        status=Fetch.Status.PENDING,
        created_at=now,
    )
    result = fetches.fetch_run(fetch_id=fetch.pk, now=now)
    assert result.status == Fetch.Status.REFUSED
    assert len(pge.calls) == 0


# --- duplicates: a copy counts only if the earlier one did the work ------------------------


def receive(body: bytes, now, django_capture_on_commit_callbacks) -> Notification:
    with django_capture_on_commit_callbacks(execute=True):
        return notifications.notification_receive(
            body=body, headers={}, remote_addr="127.0.0.1", now=now
        )


@pytest.mark.parametrize("earlier", [Notification.Status.FAILED, Notification.Status.POISONED])
def test_a_body_equal_to_a_failed_or_poisoned_notification_is_processed_again(
    earlier, now, published, django_capture_on_commit_callbacks
):
    body = batchlist(bulk_url())
    first = receive(body, now, django_capture_on_commit_callbacks)
    Notification.objects.filter(pk=first.pk).update(status=earlier, reason="error")
    second = receive(body, now, django_capture_on_commit_callbacks)
    assert second.status == Notification.Status.RECEIVED
    assert second.duplicate_of is None
    assert published.of("ingest.notification_process") == [[first.pk], [second.pk]]


def test_a_body_equal_to_a_processed_notification_is_still_a_duplicate(
    now, published, django_capture_on_commit_callbacks
):
    body = batchlist(bulk_url())
    first = receive(body, now, django_capture_on_commit_callbacks)
    Notification.objects.filter(pk=first.pk).update(status=Notification.Status.PROCESSED)
    second = receive(body, now, django_capture_on_commit_callbacks)
    assert (second.status, second.duplicate_of_id) == (Notification.Status.DUPLICATE, first.pk)
    assert published.of("ingest.notification_process") == [[first.pk]]


def test_a_second_authorization_notice_in_the_window_still_polls(
    now, published, django_capture_on_commit_callbacks
):
    """A consent may change twice within the window (revoked, then consented again): each notice
    makes the Authorization poll look, though the bodies are equal."""
    body = batchlist(f"{API_BASE}Authorization/{SID}")
    for _ in range(2):
        notification = receive(body, now, django_capture_on_commit_callbacks)
        assert notification.status == Notification.Status.RECEIVED
        with django_capture_on_commit_callbacks(execute=True):
            notifications.notification_process(notification_id=notification.pk, now=now)
    assert len(published.of("customers.authorizations_poll")) == 2
    notices = Fetch.objects.filter(reason="authorization_notice")
    assert [n.status for n in notices] == [Fetch.Status.SKIPPED] * 2


def test_two_authorization_notices_in_one_window_poll_twice(
    now, published, django_capture_on_commit_callbacks
):
    """The coalescing of fetch rows does not swallow the second poll: two different notices
    (another body each) naming the same Authorization both poll."""
    url = f"{API_BASE}Authorization/{SID}"
    for extra in (b"", b" "):
        process(batchlist(url) + extra, now, django_capture_on_commit_callbacks)
    assert len(published.of("customers.authorizations_poll")) == 2
