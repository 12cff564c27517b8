"""Delivering webhook events: one HTTP POST per try, an attempt row each, capped jittered
backoff (ingest.backoff) between tries, a poison limit on task runs, the sweeper, replay.

Rules (the same as fetches, docs/reliability.md R5):
- A task run claims its row with a status guard (PENDING/RETRYING → RUNNING), so a duplicate
  message is a no-op, and counts the run; a row claimed more than
  `GASCAP_WEBHOOK_POISON_LIMIT` times without an outcome (a worker dying on it) is POISONED.
- A 2xx answer is DELIVERED. Anything else (timeout, connection error, redirect, 4xx, 5xx) is
  retried after `backoff_delay` until `GASCAP_WEBHOOK_MAX_ATTEMPTS` tries, then FAILED; the
  row keeps the last status code and error and the admin can replay it.
- Redirects are not followed (a receiver moving is a configuration change, not something a
  signed body should chase). The secret never appears in a log or an error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from ingest.backoff import backoff_delay
from ops.metrics import webhook_delivery_record
from webhooks.endpoints import endpoint_secret
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.outbox import delivery_enqueue
from webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
Post = Callable[..., requests.Response]
EXCERPT = 500


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        claimed = WebhookDelivery.objects.filter(
            pk=delivery_id, status__in=[Status.PENDING, Status.RETRYING]
        ).update(status=Status.RUNNING, started_at=now)
        if not claimed:
            return None
        delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
        delivery.runs += 1
        if delivery.runs > settings.GASCAP_WEBHOOK_POISON_LIMIT:
            delivery.status = Status.POISONED
            delivery.last_error = f"claimed {delivery.runs} times without an outcome (poison limit)"
            delivery.save(update_fields=["runs", "status", "last_error"])
            logger.error("webhook delivery %s poisoned", delivery.pk)
            webhook_delivery_record(outcome="poisoned")
            return None
        delivery.save(update_fields=["runs"])
    return delivery


@dataclass
class SendOutcome:
    status: str
    status_code: int | None = None
    retry_in: float | None = None


def delivery_send(
    *, delivery_id: int, now: datetime, post: Post = requests.post
) -> SendOutcome | None:
    """Try one delivery once; None when the row was not claimable (done, or in flight)."""
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    event = delivery.event
    body = json.dumps(event.payload, separators=(",", ":")).encode("utf-8")
    timestamp = int(now.timestamp())
    status_code: int | None = None
    error = ""
    excerpt = ""
    started = time.monotonic()
    if not delivery.endpoint.active:
        error = "endpoint disabled"
    else:
        headers = signed_headers(
            secret=endpoint_secret(delivery.endpoint),
            message_id=event.public_id,
            timestamp=timestamp,
            body=body,
        )
        headers["User-Agent"] = "gascap-webhooks/1"
        try:
            response = post(
                delivery.endpoint.url,
                data=body,
                headers=headers,
                timeout=settings.GASCAP_WEBHOOK_TIMEOUT,
                allow_redirects=False,
            )
            status_code = response.status_code
            excerpt = response.text[:EXCERPT] if response.text else ""
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(
        delivery,
        now=now,
        status_code=status_code,
        error=error,
        excerpt=excerpt,
        duration_ms=duration_ms,
    )


def _record(
    delivery: WebhookDelivery,
    *,
    now: datetime,
    status_code: int | None,
    error: str,
    excerpt: str,
    duration_ms: int,
) -> SendOutcome:
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            started_at=now,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error[:500],
            response_excerpt=excerpt[:EXCERPT],
        )
        delivery.attempts += 1
        delivery.runs = 0  # the run recorded an outcome: it does not count towards poison
        delivery.last_status_code = status_code
        delivery.last_error = error
        retry_in: float | None = None
        if not error:
            delivery.status = Status.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempts >= settings.GASCAP_WEBHOOK_MAX_ATTEMPTS:
            delivery.status = Status.FAILED
            delivery.next_attempt_at = None
            logger.error(
                "webhook delivery %s to %s failed after %s attempts: %s",
                delivery.pk,
                delivery.endpoint.url,
                delivery.attempts,
                error,
            )
        else:
            retry_in = backoff_delay(
                retry=delivery.attempts - 1,
                base=settings.GASCAP_WEBHOOK_BACKOFF_BASE,
                cap=settings.GASCAP_WEBHOOK_BACKOFF_CAP,
            )
            delivery.status = Status.RETRYING
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        delivery.save()
        if retry_in is not None:
            delivery_id, countdown = delivery.pk, retry_in
            transaction.on_commit(
                lambda: delivery_enqueue(delivery_id=delivery_id, countdown=countdown)
            )
    webhook_delivery_record(outcome=str(delivery.status).lower())
    return SendOutcome(status=delivery.status, status_code=status_code, retry_in=retry_in)


def deliveries_sweep(*, now: datetime) -> int:
    """Re-queue deliveries the broker lost: PENDING too long, RETRYING past due, RUNNING
    past the task time limit (a dead worker). Returns how many were queued."""
    age = timedelta(seconds=settings.GASCAP_INGEST_SWEEP_AGE)
    lease = timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT) + 60)
    WebhookDelivery.objects.filter(status=Status.RUNNING, started_at__lt=now - lease).update(
        status=Status.RETRYING, next_attempt_at=None
    )
    stuck = (
        Q(status=Status.PENDING, created_at__lt=now - age)
        | Q(status=Status.RETRYING, next_attempt_at__lt=now - age)
        | Q(status=Status.RETRYING, next_attempt_at__isnull=True)
    )
    queued = 0
    for delivery_id in WebhookDelivery.objects.filter(stuck).values_list("pk", flat=True)[:500]:
        queued += int(delivery_enqueue(delivery_id=delivery_id))
    if queued:
        logger.warning("webhook sweeper re-queued %s deliveries", queued)
    return queued


def deliveries_replay(*, delivery_ids: list[int], now: datetime) -> int:
    """Operator replay: FAILED/POISONED/DELIVERED rows back to PENDING and queued on commit
    (never sent inline). The event keeps its id, so a receiver can de-duplicate."""
    ids = list(
        WebhookDelivery.objects.filter(
            pk__in=delivery_ids,
            status__in=[Status.FAILED, Status.POISONED, Status.DELIVERED, Status.RETRYING],
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=Status.PENDING, runs=0, attempts=0, next_attempt_at=None, last_error=""
        )

        def publish() -> None:
            for delivery_id in ids:
                delivery_enqueue(delivery_id=delivery_id)

        transaction.on_commit(publish)
    return len(ids)


def outcome_dict(outcome: SendOutcome | None) -> dict[str, Any]:
    if outcome is None:
        return {"status": "skipped"}
    return {"status": outcome.status, "code": outcome.status_code, "retry_in": outcome.retry_in}
