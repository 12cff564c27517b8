"""ingest's Celery tasks: thin wrappers over the services. Tasks take ids, never tokens or
payloads (architecture.md, "Task names"); each reloads its row and is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.utils import timezone

from ingest import data_request_runs, fetches, notifications, retention, sweeper
from ingest import gap_audit as gap_audit_service
from ingest.models import DataRequest

logger = logging.getLogger(__name__)


@shared_task(name="ingest.notification_process", queue="ingest")
def notification_process(notification_id: int) -> dict[str, Any]:
    result = notifications.notification_process(notification_id=notification_id, now=timezone.now())
    return {"status": result.status, "fetches": result.fetch_ids_queued}


@shared_task(name="ingest.fetch_run", queue="pge_fetch", bind=True)
def fetch_run(self, fetch_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = fetches.fetch_run(fetch_id=fetch_id, now=timezone.now(), task_id=self.request.id)
    return {"status": result.status, "reason": result.reason}


@shared_task(name="ingest.subscription_request", queue="pge_fetch")
def subscription_request(authorization_id: int) -> dict[str, Any]:
    """A consent's data request (published by customers by name): its row, queued."""
    row, created = data_request_runs.subscription_data_request_open(
        authorization_id=authorization_id,
        origin=DataRequest.Origin.CONSENT,
        now=timezone.now(),
    )
    if row is None:
        return {"status": "skipped", "reason": "unknown_authorization"}
    return {"data_request": row.pk, "status": row.status, "created": created}


@shared_task(name="ingest.data_request_run", queue="pge_fetch", bind=True)
def data_request_run_task(self, data_request_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = data_request_runs.data_request_run(
        data_request_id=data_request_id, now=timezone.now(), task_id=self.request.id
    )
    return {"status": result.status, "reason": result.reason}


@shared_task(name="ingest.daily_data_request")
def daily_data_request() -> dict[str, Any]:
    mode, made = data_request_runs.daily_data_requests_open(now=timezone.now())
    return {"mode": mode, "queued": made}


@shared_task(name="ingest.sweep_stuck")
def sweep_stuck() -> dict[str, int]:
    report = sweeper.stuck_sweep(now=timezone.now())
    return {
        "notifications": report.notifications,
        "fetches": report.fetches,
        "data_requests": report.data_requests,
    }


@shared_task(name="ingest.customer_data_purge")
def customer_data_purge() -> dict[str, int]:
    from ingest.data_retention import customer_data_retention_purge as purge

    return purge(now=timezone.now())


@shared_task(name="ingest.gap_audit")
def gap_audit() -> dict[str, int]:
    created = gap_audit_service.gap_audit(now=timezone.now())
    return {"fetches": len(created)}


@shared_task(name="ingest.pipeline_prune")
def pipeline_prune() -> dict[str, int]:
    report = retention.pipeline_prune(now=timezone.now())
    return {
        "notifications": report.notifications,
        "fetches": report.fetches,
        "attempts": report.attempts,
        "bodies_dropped": report.bodies_dropped,
        "data_requests": report.data_requests,
    }


@shared_task(name="ingest.readings_partitions_ahead")
def readings_partitions_ahead() -> dict[str, list[str]]:
    from ingest.partitions import months_ahead_ensure

    return {"created": [m.isoformat() for m in months_ahead_ensure(now=timezone.now())]}
