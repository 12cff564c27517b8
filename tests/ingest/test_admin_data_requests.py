"""Operators see data requests (issue 12): a request that kept failing is a FAILED row in the
admin list and page (reason, attempts, error, PG&E's answers), filtered by status and reason;
"Replay" asks for confirmation, needs its own permission, puts the row back to PENDING and
queues it after the commit; nothing shows a token."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from ingest import tasks
from ingest.models import DataRequest
from tests.ingest.conftest import ALL_SECRETS, subscription_url

pytestmark = pytest.mark.django_db

LIST = "admin:ingest_datarequest_changelist"


@pytest.fixture
def exhausted(pge, authorization, published) -> DataRequest:
    """A consent's request PG&E answered 503 to until the poison limit: FAILED by the real
    run, not made up."""
    pge.get(subscription_url(correlation=None), status=503)
    published.drain_after(tasks.subscription_request_task.run, authorization.pk)
    row = DataRequest.objects.get()
    assert (row.status, row.reason) == (DataRequest.Status.FAILED, "retries_exhausted")
    return row


def test_a_failed_request_shows_in_the_list_and_its_page(admin_client, exhausted):
    listing = admin_client.get(reverse(LIST) + "?status__exact=FAILED")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert f'href="/admin/ingest/datarequest/{exhausted.pk}/change/' in html
    assert "retries_exhausted" in html
    assert 'value="replay"' in html  # the action, for a user who may replay
    others = admin_client.get(reverse(LIST) + "?status__exact=REQUESTED").content.decode()
    assert f"/admin/ingest/datarequest/{exhausted.pk}/change/" not in others
    by_reason = admin_client.get(reverse(LIST) + "?reason=retries_exhausted").content.decode()
    assert f"/admin/ingest/datarequest/{exhausted.pk}/change/" in by_reason

    page = admin_client.get(reverse("admin:ingest_datarequest_change", args=[exhausted.pk]))
    assert page.status_code == 200
    detail = page.content.decode()
    assert "http_503" in detail  # the last error
    assert 'name="_save"' not in detail  # read-only
    for secret in ALL_SECRETS:
        assert secret not in detail and secret not in html


def test_records_cannot_be_added_changed_or_deleted(admin_client, exhausted):
    assert admin_client.get(reverse("admin:ingest_datarequest_add")).status_code == 403
    url = reverse("admin:ingest_datarequest_delete", args=[exhausted.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert DataRequest.objects.filter(pk=exhausted.pk).exists()


def test_replay_asks_then_queues_on_commit_and_the_request_runs_again(
    admin_client, exhausted, published, pge, django_capture_on_commit_callbacks
):
    url = reverse(LIST)
    first = admin_client.post(url, {"action": "replay", "_selected_action": [exhausted.pk]})
    assert first.status_code == 200 and b"Yes, replay" in first.content
    exhausted.refresh_from_db()
    assert exhausted.status == DataRequest.Status.FAILED and published.messages == []

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = admin_client.post(
            url, {"action": "replay", "_selected_action": [exhausted.pk], "confirm": "yes"}
        )
    assert confirmed.status_code == 302
    exhausted.refresh_from_db()
    assert (exhausted.status, exhausted.attempts, exhausted.reason) == (
        DataRequest.Status.PENDING,
        0,
        "",
    )
    assert published.of("ingest.data_request_run") == [[exhausted.pk]]
    assert LogEntry.objects.filter(object_id=str(exhausted.pk)).exists()

    # PG&E is back: the queued run asks again and the request ends REQUESTED.
    pge.replace("GET", subscription_url(correlation=None), status=202)
    published.drain(on_commit=True)
    exhausted.refresh_from_db()
    assert (exhausted.status, exhausted.attempts) == (DataRequest.Status.REQUESTED, 1)


def test_replay_needs_its_own_permission(client, exhausted, published):
    viewer = User.objects.create_user("viewer", password="a-long-test-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_datarequest"))
    client.force_login(viewer)
    listing = client.get(reverse(LIST))
    assert listing.status_code == 200
    assert b'value="replay"' not in listing.content
    client.post(
        reverse(LIST), {"action": "replay", "_selected_action": [exhausted.pk], "confirm": "yes"}
    )
    exhausted.refresh_from_db()
    assert exhausted.status == DataRequest.Status.FAILED and published.messages == []
