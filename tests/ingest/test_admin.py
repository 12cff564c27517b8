"""Operators' view: read-only notifications and fetches with attempts and errors, the
confirmed replay action (queues, never runs inline, logged), usage point coverage."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from ingest.models import Fetch, FetchAttempt, IntervalReading, Notification
from tests.builders import notification_make
from tests.ingest.conftest import ALL_SECRETS, SID, batchlist, espi_feed, subscription_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_fetch(now) -> Fetch:
    fetch = Fetch.objects.create(
        url=subscription_url(),
        url_sha256=hashlib.sha256(subscription_url().encode()).hexdigest(),
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id=SID,
        status=Fetch.Status.FAILED,
        reason="http_404",
        error="PG&E answered 404 (HTTP 404, not_found)",
        traceback="Traceback (most recent call last): ...",
        attempts=1,
        created_at=now,
    )
    FetchAttempt.objects.create(
        fetch=fetch,
        url=fetch.url,
        started_at=now,
        duration_ms=12.5,
        status_code=404,
        outcome=FetchAttempt.Outcome.PERMANENT,
        error_excerpt="not found",
    )
    return fetch


@pytest.fixture
def failed_notification(now) -> Notification:
    return notification_make(
        body=batchlist(subscription_url()),
        received_at=now,
        status=Notification.Status.FAILED,
        reason="error",
        error="boom",
        headers={"CONTENT_TYPE": "application/xml"},
    )


def test_fetch_pages_show_status_attempts_and_errors(admin_client, failed_fetch):
    listing = admin_client.get(reverse("admin:ingest_fetch_changelist") + "?status__exact=FAILED")
    assert listing.status_code == 200
    assert b"http_404" in listing.content
    detail = admin_client.get(reverse("admin:ingest_fetch_change", args=[failed_fetch.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "PG&amp;E answered 404" in html
    assert "Traceback (most recent call last)" in html
    assert "12.5" in html  # the attempt's duration
    assert 'name="_save"' not in html  # read-only


def test_admin_cannot_add_or_delete_records(admin_client, failed_fetch, failed_notification):
    assert admin_client.get(reverse("admin:ingest_fetch_add")).status_code == 403
    assert admin_client.get(reverse("admin:ingest_notification_add")).status_code == 403
    url = reverse("admin:ingest_notification_delete", args=[failed_notification.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Notification.objects.filter(pk=failed_notification.pk).exists()


def test_notification_page_shows_body_escaped(admin_client, now):
    body = b'<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><script>x</script></ns0:BatchList>'
    row = Notification.objects.create(
        status=Notification.Status.REJECTED,
        received_at=now,
        body=body,
        body_size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        reason="empty",
    )
    html = admin_client.get(reverse("admin:ingest_notification_change", args=[row.pk])).content
    assert b"&lt;script&gt;" in html
    assert b"<script>x</script>" not in html


def test_replay_asks_for_confirmation_then_queues(admin_client, failed_fetch, published):
    url = reverse("admin:ingest_fetch_changelist")
    first = admin_client.post(url, {"action": "replay", "_selected_action": [failed_fetch.pk]})
    assert first.status_code == 200
    assert b"Yes, replay" in first.content
    failed_fetch.refresh_from_db()
    assert failed_fetch.status == Fetch.Status.FAILED  # nothing happened yet
    assert published.messages == []

    confirmed = admin_client.post(
        url, {"action": "replay", "_selected_action": [failed_fetch.pk], "confirm": "yes"}
    )
    assert confirmed.status_code == 302
    failed_fetch.refresh_from_db()
    assert failed_fetch.status == Fetch.Status.PENDING  # queued, not run inline
    assert published.of("ingest.fetch_run") == [[failed_fetch.pk]]
    assert LogEntry.objects.filter(object_id=str(failed_fetch.pk)).exists()


def test_notification_replay_requeues(admin_client, failed_notification, published):
    url = reverse("admin:ingest_notification_changelist")
    admin_client.post(
        url,
        {"action": "replay", "_selected_action": [failed_notification.pk], "confirm": "yes"},
    )
    failed_notification.refresh_from_db()
    assert failed_notification.status == Notification.Status.RECEIVED
    assert published.of("ingest.notification_process") == [[failed_notification.pk]]


def test_usage_point_coverage(admin_client, now):
    import io

    from ingest.models import UsagePoint
    from ingest.readings import document_import

    document_import(source=io.BytesIO(espi_feed()), source_label="test", now=now)
    point = UsagePoint.objects.get()
    listing = admin_client.get(reverse("admin:ingest_usagepoint_changelist"))
    assert listing.status_code == 200
    assert b"UPTEST0001" in listing.content
    detail = admin_client.get(reverse("admin:ingest_usagepoint_change", args=[point.pk]))
    assert detail.status_code == 200
    assert b">24<" in detail.content  # reading count (the page, not the list: issue 14)
    assert b"days with gaps" in detail.content.lower()
    series = point.series.get()
    page = admin_client.get(reverse("admin:ingest_meterreading_change", args=[series.pk]))
    assert page.status_code == 200
    assert str(IntervalReading.objects.order_by("-start").first().value).encode() in page.content


def test_admin_pages_never_show_tokens(
    admin_client, authorization, failed_fetch, failed_notification
):
    for name in ("fetch", "notification"):
        html = admin_client.get(reverse(f"admin:ingest_{name}_changelist")).content.decode()
        for secret in ALL_SECRETS:
            assert secret not in html
    html = admin_client.get(reverse("admin:ingest_fetch_change", args=[failed_fetch.pk]))
    for secret in ALL_SECRETS:
        assert secret not in html.content.decode()
