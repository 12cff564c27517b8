"""The outbox: `event_emit` (`events_emit` for several) writes an event and its deliveries in
the caller's transaction and queues the deliveries once that transaction commits (by task
name, no task import).

Callers (customers' consent transitions, ingest's imports) call it inside the transaction
that made the change: a rollback removes the event with the change, and a committed event
whose publish failed (broker down) is found by the sweeper (`webhooks.delivery`).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from celery import current_app
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

DELIVERY_TASK = "webhooks.delivery_send"


def delivery_enqueue(*, delivery_id: int, countdown: float | None = None) -> bool:
    """Publish one delivery now. A broker outage is logged, not raised (the sweeper retries)."""
    try:
        current_app.send_task(
            DELIVERY_TASK, args=[delivery_id], queue="default", countdown=countdown, retry=False
        )
    except Exception:
        logger.warning("webhook delivery %s not queued (broker unavailable)", delivery_id)
        return False
    return True


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def event_emit(*, type: str, data: dict[str, Any], now: datetime) -> WebhookEvent | None:
    """Record an event and a delivery per interested endpoint; None when no endpoint wants it
    (nothing is stored then: an outbox of events nobody receives only grows)."""
    events = events_emit(type=type, datas=[data], now=now)
    return events[0] if events else None


def events_emit(*, type: str, datas: list[dict[str, Any]], now: datetime) -> list[WebhookEvent]:
    """`event_emit` for several events of one type at once (an import's `data.available`, one
    per usage point: 750 in a 500-customer Bulk document): one lookup of the endpoints and
    one insert of the events and of the deliveries, whatever their number."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    if not datas:
        return []
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(type)]
    if not endpoints:
        return []
    with transaction.atomic():
        events = WebhookEvent.objects.bulk_create(
            [
                WebhookEvent(
                    public_id=f"msg_{uuid.uuid4().hex}",
                    type=type,
                    payload={"type": type, "timestamp": now.isoformat(), "data": _jsonable(data)},
                    created_at=now,
                )
                for data in datas
            ]
        )
        if any(event.pk is None for event in events):  # backends that return no ids
            by_public_id = WebhookEvent.objects.in_bulk(
                [event.public_id for event in events], field_name="public_id"
            )
            events = [by_public_id[event.public_id] for event in events]
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(event=event, endpoint=endpoint, created_at=now)
                for event in events
                for endpoint in endpoints
            ]
        )
        ids = [d.pk for d in deliveries]
        if any(pk is None for pk in ids):
            ids = list(
                WebhookDelivery.objects.filter(event__in=events).values_list("pk", flat=True)
            )

        def publish() -> None:
            for delivery_id in ids:
                delivery_enqueue(delivery_id=delivery_id)

        transaction.on_commit(publish)
    return events
