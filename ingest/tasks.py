"""ingest's Celery tasks: thin wrappers over the services. Tasks take ids, never tokens or
payloads (architecture.md, "Task names"); each reloads its row and is safe to run twice.

The Python names end in `_task` (a task and the service it calls never share a name); the
registered names are `ingest.publish`'s constants, unchanged, so queued messages and beat's
rows still find them. Services publish through `ingest.publish`, never through this module."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from ingest import data_request_runs, fetches, notifications, publish, retention, sweeper
from ingest import gap_audit as gap_audit_service
from ingest.data_retention import customer_data_retention_purge
from ingest.models import DataRequest
from ingest.partitions import months_ahead_ensure

logger = logging.getLogger(__name__)


@shared_task(name=publish.NOTIFICATION_PROCESS, queue="ingest")
def notification_process_task(notification_id: int) -> dict[str, Any]:
    result = notifications.notification_process(notification_id=notification_id, now=timezone.now())
    return {"status": result.status, "fetches": result.fetch_ids_queued}


@shared_task(name=publish.FETCH_RUN, queue="pge_fetch", bind=True)
def fetch_run_task(self, fetch_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = fetches.fetch_run(fetch_id=fetch_id, now=timezone.now(), task_id=self.request.id)
    return {"status": result.status, "reason": result.reason}


@shared_task(name=publish.SUBSCRIPTION_REQUEST, queue="pge_fetch")
def subscription_request_task(authorization_id: int) -> dict[str, Any]:
    """A consent's data request (published by customers by name): its row, queued."""
    row, created = data_request_runs.subscription_data_request_open(
        authorization_id=authorization_id,
        origin=DataRequest.Origin.CONSENT,
        now=timezone.now(),
    )
    if row is None:
        return {"status": "skipped", "reason": "unknown_authorization"}
    return {"data_request": row.pk, "status": row.status, "created": created}


@shared_task(name=publish.DATA_REQUEST_RUN, queue="pge_fetch", bind=True)
def data_request_run_task(self, data_request_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = data_request_runs.data_request_run(
        data_request_id=data_request_id, now=timezone.now(), task_id=self.request.id
    )
    return {"status": result.status, "reason": result.reason}


@shared_task(name=publish.DAILY_DATA_REQUEST)
def daily_data_request_task() -> dict[str, Any]:
    mode, made = data_request_runs.daily_data_requests_open(now=timezone.now())
    return {"mode": mode, "queued": made}


@shared_task(name=publish.SWEEP_STUCK)
def sweep_stuck_task() -> dict[str, int]:
    report = sweeper.stuck_sweep(now=timezone.now())
    return {
        "notifications": report.notifications,
        "fetches": report.fetches,
        "data_requests": report.data_requests,
    }


@shared_task(name=publish.CUSTOMER_DATA_PURGE)
def customer_data_purge_task() -> dict[str, int]:
    return customer_data_retention_purge(now=timezone.now())


@shared_task(name=publish.GAP_AUDIT)
def gap_audit_task() -> dict[str, int]:
    created = gap_audit_service.gap_audit(now=timezone.now())
    return {"fetches": len(created)}


@shared_task(name=publish.PIPELINE_PRUNE)
def pipeline_prune_task() -> dict[str, int]:
    report = retention.pipeline_prune(now=timezone.now())
    return {
        "notifications": report.notifications,
        "fetches": report.fetches,
        "attempts": report.attempts,
        "bodies_dropped": report.bodies_dropped,
        "data_requests": report.data_requests,
    }


@shared_task(name=publish.READINGS_PARTITIONS_AHEAD)
def readings_partitions_ahead_task() -> dict[str, list[str]]:
    return {"created": [m.isoformat() for m in months_ahead_ensure(now=timezone.now())]}
