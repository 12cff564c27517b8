"""Webhook delivery by a real Celery worker over Redis and PostgreSQL: the event is committed,
published after the commit, sent signed, retried after a 503 with backoff, and delivered."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from tests.ingest.conftest import celery_worker_process  # noqa: F401  (fixture)
from tests.support import subprocess_database_url
from webhooks.endpoints import endpoint_create
from webhooks.models import WebhookDelivery
from webhooks.outbox import event_emit

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_delivers_a_committed_event_signed_after_one_retry(
    receiver,
    settings,
    celery_worker_process,  # noqa: F811
):
    key = Fernet.generate_key().decode()
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [key]
    celery_worker_process(
        {
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": os.environ["REDIS_URL"],
            "GASCAP_FIELD_ENCRYPTION_KEYS": key,
            "GASCAP_WEBHOOK_BACKOFF_BASE": "0.2",
            "GASCAP_WEBHOOK_BACKOFF_CAP": "0.5",
            "GASCAP_WEBHOOK_ALLOW_HTTP": "true",
        }
    )
    _endpoint, secret = endpoint_create(url=receiver.url, now=NOW)
    receiver.statuses = [503]
    with transaction.atomic():
        event = event_emit(type="consent.activated", data={"external_id": "u1"}, now=NOW)
    delivery = WebhookDelivery.objects.get(event=event)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.status in (WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED):
            break
        time.sleep(0.1)
    assert delivery.status == WebhookDelivery.Status.DELIVERED, delivery.last_error
    assert delivery.attempts == 2
    assert [a.status_code for a in delivery.attempt_rows.order_by("pk")] == [503, 204]
    headers, body = receiver.requests[-1]
    assert Webhook(secret).verify(body, headers)["data"] == {"external_id": "u1"}
