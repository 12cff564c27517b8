"""Webhooks out: endpoints and secrets, the outbox, Standard Webhooks signatures (checked
with the `standardwebhooks` reference library), delivery with attempts, backoff, failure,
poison, sweeper and replay; consent and data events."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from customers.authorization_sync import authorization_revoke
from customers.models import Authorization
from customers.tokens import authorization_mark_needs_reconsent
from ingest.readings import document_import
from tests.builders import authorization_make, customer_make
from webhooks.delivery import deliveries_sweep, delivery_send
from webhooks.endpoints import endpoint_create, endpoint_secret
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.outbox import event_emit
from webhooks.signing import signature

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
Status = WebhookDelivery.Status


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list, float | None]]:
    """Tasks published by name (recorded instead of reaching a broker)."""
    from celery import current_app

    sent: list[tuple[str, list, float | None]] = []

    def send_task(name, args=None, kwargs=None, countdown=None, **options):
        sent.append((name, list(args or []), countdown))

    monkeypatch.setattr(current_app, "send_task", send_task)
    return sent


@pytest.fixture
def endpoint(receiver):
    endpoint, secret = endpoint_create(url=receiver.url, now=NOW)
    return endpoint, secret


def test_command_prints_the_secret_on_its_last_line_and_stores_it_encrypted(capsys):
    call_command(
        "webhook_endpoint_add",
        "https://app.example.org/hooks",
        "--events",
        "consent.activated,data.available",
    )
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    row = WebhookEndpoint.objects.get()
    assert row.event_types == ["consent.activated", "data.available"]
    assert secret not in json.dumps(list(WebhookEndpoint.objects.values()), default=str)
    assert endpoint_secret(row) == secret


def test_command_refuses_unknown_events_and_plain_http_in_production(settings):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="unknown event type"):
        call_command("webhook_endpoint_add", "https://a.example.org/", "--events", "nope")
    settings.GASCAP_WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(CommandError, match="https"):
        call_command("webhook_endpoint_add", "http://a.example.org/")
    assert not WebhookEndpoint.objects.exists()


def test_signature_matches_the_standard_webhooks_reference_library():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"type":"data.available"}'
    ours = signature(secret=secret, message_id="msg_1", timestamp=1700000000, body=body)
    theirs = Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(1700000000, tz=UTC), body.decode()
    )
    assert ours == theirs


def test_an_event_in_a_rolled_back_transaction_is_never_sent(endpoint, published):
    with pytest.raises(RuntimeError), transaction.atomic():
        event_emit(type="consent.activated", data={"x": 1}, now=NOW)
        raise RuntimeError("the change failed")
    assert not WebhookEvent.objects.exists() and not published


def test_a_committed_event_is_queued_after_commit(
    endpoint, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            event = event_emit(type="consent.activated", data={"x": 1}, now=NOW)
            assert not published  # not before the commit
    delivery = WebhookDelivery.objects.get(event=event)
    assert published == [("webhooks.delivery_send", [delivery.pk], None)]


def test_no_endpoint_no_event(published):
    assert event_emit(type="consent.activated", data={}, now=NOW) is None
    assert not WebhookEvent.objects.exists()


def test_endpoints_receive_only_their_event_types(receiver, published):
    endpoint_create(url=receiver.url, event_types=["bill.available"], now=NOW)
    assert event_emit(type="consent.activated", data={}, now=NOW) is None


def test_delivery_is_signed_and_verifies_with_the_reference_library(endpoint, receiver, published):
    _endpoint, secret = endpoint
    event = event_emit(type="data.available", data={"usage_point": 7}, now=NOW)
    delivery = event.deliveries.get()
    outcome = delivery_send(delivery_id=delivery.pk, now=timezone.now())
    assert outcome.status == Status.DELIVERED
    ((headers, body),) = receiver.requests
    assert headers["webhook-id"] == event.public_id
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "data.available" and payload["data"] == {"usage_point": 7}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"7", b"8"), headers)
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.attempts == 1
    assert WebhookAttempt.objects.get().status_code == 204
    # A second message for the same delivery (broker redelivery) does nothing.
    assert delivery_send(delivery_id=delivery.pk, now=timezone.now()) is None
    assert len(receiver.requests) == 1


def _delivered_metric(outcome: str) -> float:
    """`gascap_webhook_deliveries_total{outcome}` in this process (ops.metrics)."""
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("gascap_webhook_deliveries_total", {"outcome": outcome})
    return value or 0.0


def test_failures_retry_with_capped_jittered_backoff_then_fail(
    endpoint, receiver, published, settings, django_capture_on_commit_callbacks
):
    settings.GASCAP_WEBHOOK_MAX_ATTEMPTS = 3
    settings.GASCAP_WEBHOOK_BACKOFF_BASE = 10
    settings.GASCAP_WEBHOOK_BACKOFF_CAP = 15
    receiver.statuses = [500, 503, 500]
    delivery = event_emit(type="bill.available", data={}, now=NOW).deliveries.get()
    published.clear()
    before = {o: _delivered_metric(o) for o in ("retrying", "failed")}
    for attempt in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            outcome = delivery_send(delivery_id=delivery.pk, now=timezone.now())
        if attempt < 2:
            assert outcome.status == Status.RETRYING
            assert 0 <= outcome.retry_in <= min(15, 10 * 2**attempt)
            assert published[-1][0] == "webhooks.delivery_send"
            assert published[-1][2] == outcome.retry_in
    assert outcome.status == Status.FAILED
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.last_status_code == 500
    assert [a.status_code for a in WebhookAttempt.objects.order_by("pk")] == [500, 503, 500]
    assert len(receiver.requests) == 3
    assert _delivered_metric("retrying") - before["retrying"] == 2
    assert _delivered_metric("failed") - before["failed"] == 1


def test_redirects_and_dead_receivers_are_failures_not_followed(receiver, published, settings):
    settings.GASCAP_WEBHOOK_MAX_ATTEMPTS = 1
    receiver.statuses = [302]
    endpoint_create(url=receiver.url, now=NOW)
    delivery = event_emit(type="bill.available", data={}, now=NOW).deliveries.get()
    assert delivery_send(delivery_id=delivery.pk, now=timezone.now()).status == Status.FAILED
    dead, _ = endpoint_create(url="http://127.0.0.1:9/hooks", now=NOW)
    WebhookEndpoint.objects.exclude(pk=dead.pk).update(active=False)
    delivery = event_emit(type="bill.available", data={}, now=NOW).deliveries.get()
    outcome = delivery_send(delivery_id=delivery.pk, now=timezone.now())
    assert outcome.status == Status.FAILED
    assert "Connection" in WebhookDelivery.objects.get(pk=delivery.pk).last_error


def test_a_row_claimed_too_often_without_an_outcome_is_poisoned(endpoint, published, settings):
    settings.GASCAP_WEBHOOK_POISON_LIMIT = 2
    delivery = event_emit(type="bill.available", data={}, now=NOW).deliveries.get()
    # Two runs that died mid-send: claimed (RUNNING), then handed back by the sweeper.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(runs=2)
    poisoned = _delivered_metric("poisoned")
    assert delivery_send(delivery_id=delivery.pk, now=timezone.now()) is None
    assert _delivered_metric("poisoned") == poisoned + 1
    delivery.refresh_from_db()
    assert delivery.status == Status.POISONED and "poison" in delivery.last_error


def test_sweeper_requeues_lost_and_abandoned_deliveries(endpoint, published):
    delivery = event_emit(type="bill.available", data={}, now=NOW).deliveries.get()
    published.clear()
    assert deliveries_sweep(now=NOW + timedelta(seconds=10)) == 0  # young: its message lives
    assert deliveries_sweep(now=NOW + timedelta(hours=1)) == 1
    assert published == [("webhooks.delivery_send", [delivery.pk], None)]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Status.RUNNING, started_at=NOW)
    published.clear()
    assert deliveries_sweep(now=NOW + timedelta(hours=2)) == 1
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == Status.RETRYING


def test_admin_replay_requeues_a_failed_delivery_after_commit(
    endpoint, published, client, django_capture_on_commit_callbacks
):
    delivery = event_emit(type="bill.available", data={}, now=NOW).deliveries.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED, attempts=8)
    published.clear()
    user = get_user_model().objects.create_superuser("op", "op@example.org", "pw-123456789")
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/webhooks/webhookdelivery/",
            {"action": "replay", "_selected_action": [delivery.pk]},
        )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING and delivery.attempts == 0
    assert published == [("webhooks.delivery_send", [delivery.pk], None)]


def test_admin_creates_an_endpoint_and_shows_its_secret_once(receiver, client):
    user = get_user_model().objects.create_superuser("op", "op@example.org", "pw-123456789")
    client.force_login(user)
    response = client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {
            "url": receiver.url,
            "description": "app",
            "active": "on",
            "event_choices": ["data.available"],
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    secret = html.split('<pre id="webhook-secret">')[1].split("</pre>")[0]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint_secret(endpoint) == secret and endpoint.event_types == ["data.available"]
    page = client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert secret not in page and endpoint.secret_encrypted not in page


def test_consent_transitions_emit_consent_events(endpoint, published, monkeypatch):
    customer = customer_make(display_name="x", external_id="user-9")
    authorization = authorization_make(
        customer=customer, subscription_id="777", status=Authorization.Status.ACTIVE
    )
    authorization_mark_needs_reconsent(authorization=authorization, reason="invalid_grant", now=NOW)
    authorization.status = Authorization.Status.ACTIVE
    authorization.save()
    from customers import tokens

    class NoPge:
        def authorization_delete(self, **kwargs):
            return None

    monkeypatch.setattr(tokens, "pge_client", lambda: NoPge())
    monkeypatch.setattr("customers.authorization_sync.client_access_token", lambda now: "t")
    authorization_revoke(authorization_id=authorization.pk, now=NOW)
    events = list(WebhookEvent.objects.order_by("pk"))
    assert [e.type for e in events] == ["consent.needs_reconsent", "consent.revoked"]
    assert events[1].payload["data"]["external_id"] == "user-9"
    assert events[1].payload["data"]["consent_id"] == str(authorization.public_id)


def test_imports_announce_new_data_and_new_bills_once(endpoint, published, fixture_path):
    for name in ("pge_smd_2020_gas_daily_therm_bulk.xml", "pge_cmd_2015_usagesummary_feed.xml"):
        document_import(source=fixture_path(name), source_label=name, now=NOW)
    types = sorted(WebhookEvent.objects.values_list("type", flat=True))
    assert types == ["bill.available"] * 3 + ["data.available"]
    data = WebhookEvent.objects.get(type="data.available").payload["data"]
    assert data["usage_point_id"] == "7170720474" and data["readings_new"] == 1
    assert data["series"][0]["first_day"] == "2020-05-09"
    # The same documents again: nothing new, nothing announced.
    for name in ("pge_smd_2020_gas_daily_therm_bulk.xml", "pge_cmd_2015_usagesummary_feed.xml"):
        document_import(source=fixture_path(name), source_label=name, now=NOW)
    assert WebhookEvent.objects.count() == 4
