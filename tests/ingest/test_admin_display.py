"""What an operator reads in ingest's admin: ESPI codes in words ("label (code)", unknown codes
as the number), readings in PG&E's local time with the zone named, usage points linked to their
subscription and customer, and replay refused to staff without the replay permission."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ingest.models import Fetch, MeterReading, Notification, ReadingType, UsagePoint
from ingest.readings import document_import
from tests.builders import notification_make, staff_client
from tests.ingest.conftest import SID, UPID, batchlist, espi_feed, subscription_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(now) -> UsagePoint:
    # 24 hourly readings from 2026-03-09 00:00 PDT (07:00Z), Wh x10^-3, delivered.
    document_import(source=io.BytesIO(espi_feed()), source_label="test", now=now)
    return UsagePoint.objects.get()


def test_usage_point_shows_service_kind_in_words_and_filters_by_it(admin_client, imported):
    listing = admin_client.get(reverse("admin:ingest_usagepoint_changelist")).content.decode()
    assert "electricity (0)" in listing
    gas_only = admin_client.get(reverse("admin:ingest_usagepoint_changelist") + "?service_kind=1")
    assert UPID not in gas_only.content.decode()
    electric = admin_client.get(reverse("admin:ingest_usagepoint_changelist") + "?service_kind=0")
    assert UPID in electric.content.decode()


def test_reading_type_codes_read_as_words_with_the_code(admin_client, imported):
    ReadingType.objects.update(measuring_period=7, currency=840, default_quality=17)
    rt = ReadingType.objects.get()
    html = admin_client.get(reverse("admin:ingest_readingtype_change", args=[rt.pk])).content
    page = html.decode()
    for text in (
        "Wh (72)",
        "milli (-3)",
        "delivered (1)",
        "energy (12)",
        "delta (4)",
        "electricity (1)",
        "1 h (3600 s)",
        "60 min (7)",
        "USD (840)",
        "validated (17)",
        "Wh \u00d710\u207b\u00b3 \u00b7 delivered \u00b7 1 h",
    ):
        assert text in page, text
    listing = admin_client.get(reverse("admin:ingest_readingtype_changelist")).content.decode()
    assert "Wh (72)" in listing and "delivered (1)" in listing


def test_unknown_codes_show_as_the_number(admin_client, imported):
    # The ESPI enumerations are open: PG&E gas sends multiplier -8, which has no name.
    ReadingType.objects.update(uom=9999, power_of_ten_multiplier=-8, flow_direction=77)
    rt = ReadingType.objects.get()
    page = admin_client.get(reverse("admin:ingest_readingtype_change", args=[rt.pk])).content
    html = page.decode()
    assert "uom 9999 \u00d710\u207b\u2078 \u00b7 flow 77" in html
    assert ">-8<" in html and ">9999<" in html and ">77<" in html


def test_series_reads_as_units_not_hrefs(admin_client, imported):
    listing = admin_client.get(reverse("admin:ingest_meterreading_changelist")).content.decode()
    assert "Wh \u00d710\u207b\u00b3 \u00b7 delivered \u00b7 1 h" in listing


def test_readings_show_in_pacific_time_and_the_header_names_the_zone(admin_client, imported):
    series = MeterReading.objects.get()
    page = admin_client.get(reverse("admin:ingest_meterreading_change", args=[series.pk]))
    html = page.content.decode()
    assert "times shown in America/Los_Angeles" in html
    # The last reading starts 2026-03-10 06:00Z: 23:00 on the 9th, Pacific daylight time.
    assert "2026-03-09 23:00 PDT" in html
    assert "2026-03-10 06:00" not in html
    point_page = admin_client.get(reverse("admin:ingest_usagepoint_change", args=[imported.pk]))
    assert "2026-03-09 00:00 PDT" in point_page.content.decode()  # first reading


def test_local_zone_is_a_setting(admin_client, imported, settings):
    settings.GASCAP_LOCAL_TIME_ZONE = "America/New_York"
    series = MeterReading.objects.get()
    html = admin_client.get(reverse("admin:ingest_meterreading_change", args=[series.pk]))
    assert "2026-03-10 02:00 EDT" in html.content.decode()
    assert "times shown in America/New_York" in html.content.decode()


def test_admin_pages_do_not_change_the_process_time_zone(admin_client, imported):
    admin_client.get(reverse("admin:ingest_usagepoint_changelist"))
    assert timezone.get_current_timezone_name() == "UTC"


def test_usage_point_links_to_its_subscription_and_customer(admin_client, imported, authorization):
    imported.authorization = authorization  # as a fetch of that subscription binds it
    imported.save()
    page = admin_client.get(reverse("admin:ingest_usagepoint_change", args=[imported.pk]))
    html = page.content.decode()
    auth_url = reverse("admin:customers_authorization_change", args=[authorization.pk])
    customer_url = reverse("admin:customers_customer_change", args=[authorization.customer_id])
    assert f'href="{auth_url}"' in html and SID in html
    assert f'href="{customer_url}"' in html and "Test Customer A" in html
    listing = admin_client.get(reverse("admin:ingest_usagepoint_changelist")).content.decode()
    assert f'href="{auth_url}"' in listing


def test_usage_point_without_a_recorded_consent_says_so(admin_client, imported, authorization):
    """An operator's file names the subscription in its hrefs; the admin does not take that
    for a binding."""
    page = admin_client.get(reverse("admin:ingest_usagepoint_change", args=[imported.pk]))
    assert "not bound to a consent" in page.content.decode()


# --- Replay needs its own permission (docs/reliability.md test 58)
# ------------------------------------


@pytest.fixture
def failed_fetch(now) -> Fetch:
    return Fetch.objects.create(
        url=subscription_url(),
        url_sha256=hashlib.sha256(subscription_url().encode()).hexdigest(),
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id=SID,
        status=Fetch.Status.FAILED,
        reason="http_404",
        attempts=1,
        created_at=now,
    )


@pytest.fixture
def failed_notification(now) -> Notification:
    return notification_make(
        body=batchlist(subscription_url()),
        received_at=now,
        status=Notification.Status.FAILED,
        reason="error",
    )


def replay(client: Client, model: str, pk: int):
    return client.post(
        reverse(f"admin:ingest_{model}_changelist"),
        {"action": "replay", "_selected_action": [pk], "confirm": "yes"},
    )


def test_viewer_sees_no_replay_and_a_forged_replay_does_nothing(
    failed_fetch, failed_notification, published
):
    viewer = staff_client("op-viewer", "view_fetch", "view_notification")
    for model in ("fetch", "notification"):
        listing = viewer.get(reverse(f"admin:ingest_{model}_changelist"))
        assert listing.status_code == 200
        assert 'value="replay"' not in listing.content.decode()
    replay(viewer, "fetch", failed_fetch.pk)
    replay(viewer, "notification", failed_notification.pk)
    failed_fetch.refresh_from_db()
    failed_notification.refresh_from_db()
    assert failed_fetch.status == Fetch.Status.FAILED
    assert failed_notification.status == Notification.Status.FAILED
    assert published.messages == []
    assert not LogEntry.objects.exists()


def test_replay_permission_allows_replay_and_logs_who_did_it(
    failed_fetch, failed_notification, published
):
    operator = staff_client(
        "op-replayer", "view_fetch", "replay_fetch", "view_notification", "replay_notification"
    )
    listing = operator.get(reverse("admin:ingest_fetch_changelist")).content.decode()
    assert 'value="replay"' in listing
    assert replay(operator, "fetch", failed_fetch.pk).status_code == 302
    assert replay(operator, "notification", failed_notification.pk).status_code == 302
    failed_fetch.refresh_from_db()
    failed_notification.refresh_from_db()
    assert failed_fetch.status == Fetch.Status.PENDING
    assert failed_notification.status == Notification.Status.RECEIVED
    assert published.of("ingest.fetch_run") == [[failed_fetch.pk]]
    entries = LogEntry.objects.filter(user__username="op-replayer")
    assert sorted(e.object_id for e in entries) == sorted(
        [str(failed_fetch.pk), str(failed_notification.pk)]
    )
    assert all("Replayed" in e.get_change_message() for e in entries)


def test_replay_permission_for_fetches_does_not_cover_notifications(failed_notification, published):
    operator = staff_client("op-fetches", "view_notification", "replay_fetch")
    replay(operator, "notification", failed_notification.pk)
    failed_notification.refresh_from_db()
    assert failed_notification.status == Notification.Status.FAILED
    assert published.messages == []
