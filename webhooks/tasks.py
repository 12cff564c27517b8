"""Celery tasks of webhooks out: a few lines each, ids only."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone


@shared_task(name="webhooks.delivery_send")
def delivery_send(delivery_id: int) -> dict[str, Any]:
    from webhooks.delivery import delivery_send as send
    from webhooks.delivery import outcome_dict

    return outcome_dict(send(delivery_id=delivery_id, now=timezone.now()))


@shared_task(name="webhooks.sweep")
def sweep() -> dict[str, int]:
    from webhooks.delivery import deliveries_sweep

    return {"queued": deliveries_sweep(now=timezone.now())}
