"""Operators' actions on consents are gated and recorded (docs/reliability.md test 58): refresh,
request data and revoke need `customers.change_authorization` (a forged POST from a viewer
does nothing) and write a LogEntry naming the operator; a consent's page shows PG&E's status
in words and the data received for each usage point, linking to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Authorization, SubscriptionUsagePoint
from customers.usage_point_kinds import subscription_usage_points_record_kinds
from tests.builders import staff_client
from tests.customers.conftest import SUBSCRIPTION_ID, authorization_make

pytestmark = pytest.mark.django_db

ADMIN = "/" + django_settings.GASCAP_ADMIN_PATH
UPID = "7700001"


@pytest.fixture
def consent(customer) -> Authorization:
    authorization = authorization_make(
        customer=customer, expires_at=timezone.now() + timedelta(hours=1)
    )
    SubscriptionUsagePoint.objects.create(authorization=authorization, usage_point_id=UPID)
    return authorization


def action(client: Client, name: str, authorization: Authorization, **extra: str):
    return client.post(
        f"{ADMIN}customers/authorization/",
        {"action": name, "_selected_action": [str(authorization.pk)], **extra},
    )


def test_forged_actions_from_a_viewer_do_nothing(consent, pge, sent_tasks):
    viewer = staff_client("op-viewer", "view_authorization")
    action(viewer, "revoke_consent", consent, confirmed="yes")
    action(viewer, "refresh_tokens_now", consent)
    action(viewer, "request_data_now", consent)
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.access_token_encrypted == consent.access_token_encrypted
    assert pge.deletes == []
    assert pge.grant_count("refresh_token") == 0
    assert sent_tasks == []
    assert not LogEntry.objects.exists()


def test_change_permission_allows_the_actions_and_each_is_logged(
    consent, pge, sent_tasks, django_capture_on_commit_callbacks
):
    operator = staff_client("op-change", "view_authorization", "change_authorization")
    assert action(operator, "refresh_tokens_now", consent).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert action(operator, "request_data_now", consent).status_code == 302
    assert action(operator, "revoke_consent", consent, confirmed="yes").status_code == 302
    assert pge.grant_count("refresh_token") == 1
    assert sent_tasks == [("ingest.subscription_request", [consent.pk], "pge_fetch")]
    assert Authorization.objects.get().status == Authorization.Status.REVOKED
    messages = [
        entry.get_change_message()
        for entry in LogEntry.objects.filter(user__username="op-change").order_by("pk")
    ]
    assert messages == [
        "Refreshed tokens at PG&E",
        "Requested data from PG&E",
        "Revoked consent at PG&E",
    ]
    assert all(str(consent.pk) == e.object_id for e in LogEntry.objects.all())


def test_failed_revocation_is_shown_and_logged_and_the_consent_stays(consent, pge):
    pge.delete_status = 400
    operator = staff_client("op-change", "view_authorization", "change_authorization")
    response = action(operator, "revoke_consent", consent, confirmed="yes")
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(shown) == 1 and shown[0].startswith(f"Could not revoke {SUBSCRIPTION_ID}: ")
    assert LogEntry.objects.get().get_change_message().startswith("Revocation failed: ")
    assert Authorization.objects.get().status == Authorization.Status.ACTIVE


def test_failed_action_is_logged_without_a_token(consent, pge):
    pge.refresh_answers = [(400, '{"error": "invalid_grant"}')]
    operator = staff_client("op-change", "view_authorization", "change_authorization")
    action(operator, "refresh_tokens_now", consent)
    entry = LogEntry.objects.get()
    assert entry.get_change_message().startswith("Token refresh failed")
    for secret in (consent.access_token, consent.refresh_token):
        assert secret not in entry.get_change_message()


def test_consent_page_shows_pge_status_and_usage_point_data(admin_client, consent):
    from ingest.models import IntervalReading, MeterReading, UsagePoint
    from ingest.partitions import months_ensure

    Authorization.objects.filter(pk=consent.pk).update(pge_status=1)
    moment = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # 00:00 PST
    point = UsagePoint.objects.create(
        href=f"https://api.pge.test/r/Subscription/{SUBSCRIPTION_ID}/UsagePoint/{UPID}",
        usage_point_id=UPID,
        authorization=consent,  # bound by the fetch that stored it
        service_kind=1,
        created_at=moment,
        updated_at=moment,
    )
    series = MeterReading.objects.create(
        usage_point=point,
        href=f"{point.href}/MeterReading/1",
        meter_reading_id="1",
        created_at=moment,
    )
    months_ensure(months=[moment])  # PostgreSQL: readings live in monthly partitions
    IntervalReading.objects.bulk_create(
        IntervalReading(
            meter_reading=series, start=moment + timedelta(days=i), duration=86400, value=100 + i
        )
        for i in range(3)
    )
    html = admin_client.get(f"{ADMIN}customers/authorization/{consent.pk}/change/").content
    page = html.decode()
    assert "active (1)" in page
    link = reverse("admin:ingest_usagepoint_change", args=[point.pk])
    assert f'<a href="{link}">3 readings, 2026-01-15 00:00 PST to 2026-01-17 00:00 PST</a>' in page


def test_consent_page_says_when_no_data_arrived(admin_client, consent):
    html = admin_client.get(f"{ADMIN}customers/authorization/{consent.pk}/change/").content
    assert b"no data yet" in html


# --- service kinds from the data (PG&E's Authorization resource does not say) -------------


def test_record_kinds_sets_gas_and_electric(consent):
    changed = subscription_usage_points_record_kinds(
        authorization_id=consent.pk, kinds={UPID: 1, "7700002": 0}
    )
    assert changed == 2
    kinds = dict(SubscriptionUsagePoint.objects.values_list("usage_point_id", "service_kind"))
    assert kinds == {UPID: "gas", "7700002": "electric"}
    # Idempotent: the same data again changes nothing.
    assert (
        subscription_usage_points_record_kinds(
            authorization_id=consent.pk, kinds={UPID: 1, "7700002": 0}
        )
        == 0
    )


def test_record_kinds_keeps_a_known_kind_for_codes_it_cannot_map(consent):
    SubscriptionUsagePoint.objects.update(service_kind="gas")
    subscription_usage_points_record_kinds(authorization_id=consent.pk, kinds={UPID: 2})
    assert SubscriptionUsagePoint.objects.get().service_kind == "gas"


def test_record_kinds_ignores_an_unknown_authorization(consent):
    assert (
        subscription_usage_points_record_kinds(authorization_id=consent.pk + 1000, kinds={UPID: 1})
        == 0
    )
    assert SubscriptionUsagePoint.objects.get().service_kind == "other"
