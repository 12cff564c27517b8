"""ingest's Celery tasks: thin wrappers over the services. Tasks take ids, never tokens or
payloads (architecture.md, "Task names"); each reloads its row and is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from gascap.pge.errors import PgeTransientError
from gascap.pge.gate import BudgetExhausted, Priority, call_priority
from gascap.pge_budget.pacing import RateLimitTimeout
from ingest import data_requests, fetches, notifications, retention, sweeper
from ingest.backoff import backoff_delay
from ingest.budget_plan import daily_request_mode

logger = logging.getLogger(__name__)


@shared_task(name="ingest.notification_process", queue="ingest")
def notification_process(notification_id: int) -> dict[str, Any]:
    result = notifications.notification_process(notification_id=notification_id, now=timezone.now())
    return {"status": result.status, "fetches": result.fetch_ids_queued}


@shared_task(name="ingest.fetch_run", queue="pge_fetch", bind=True)
def fetch_run(self, fetch_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = fetches.fetch_run(fetch_id=fetch_id, now=timezone.now(), task_id=self.request.id)
    return {"status": result.status, "reason": result.reason}


@shared_task(name="ingest.subscription_request", queue="pge_fetch", bind=True, max_retries=5)
def subscription_request(self, authorization_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from customers.services import AuthorizationUnavailable
    from gascap.pge_budget.budget import budget_wait_countdown, budget_wait_record

    now = timezone.now()
    try:
        with call_priority(Priority.SCHEDULED):
            report = data_requests.subscription_data_request(
                authorization_id=authorization_id, now=now
            )
    except BudgetExhausted as exc:
        # Not a failure and not a retry: the request runs again when the window opens.
        budget_wait_record(work="data_request", exc=exc, now=now)
        countdown = budget_wait_countdown(exc=exc, now=now)
        subscription_request.apply_async(
            args=[authorization_id], queue="pge_fetch", countdown=countdown
        )
        return {"status": "budget_wait", "retry_at": exc.retry_at.isoformat()}
    except AuthorizationUnavailable as exc:
        logger.warning(
            "data request for authorization %s skipped: %s", authorization_id, exc.reason
        )
        return {"status": "skipped", "reason": exc.reason}
    except (PgeTransientError, RateLimitTimeout) as exc:
        delay = backoff_delay(
            retry=self.request.retries,
            base=float(settings.GASCAP_INGEST_BACKOFF_BASE),
            cap=float(settings.GASCAP_INGEST_BACKOFF_CAP),
            retry_after=getattr(exc, "retry_after", None),
        )
        raise self.retry(countdown=delay, exc=None) from None
    return {"status": "requested", "windows": len(report.windows)}


@shared_task(name="ingest.daily_data_request")
def daily_data_request() -> dict[str, Any]:
    from customers.selectors import active_authorizations
    from gascap.pge_budget.budget import budget_wait_countdown, budget_wait_record

    now = timezone.now()
    ids = list(active_authorizations().values_list("pk", flat=True))
    if daily_request_mode(consents=len(ids)) == "bulk":
        try:
            with call_priority(Priority.SCHEDULED):
                status = data_requests.bulk_data_request(now=now)
        except BudgetExhausted as exc:
            budget_wait_record(work="bulk_request", exc=exc, now=now)
            daily_data_request.apply_async(countdown=budget_wait_countdown(exc=exc, now=now))
            return {"mode": "bulk", "status": "budget_wait"}
        return {"mode": "bulk", "status": status}
    for authorization_id in ids:
        subscription_request.apply_async(args=[authorization_id], queue="pge_fetch")
    return {"mode": "subscription", "queued": len(ids)}


@shared_task(name="ingest.sweep_stuck")
def sweep_stuck() -> dict[str, int]:
    report = sweeper.stuck_sweep(now=timezone.now())
    return {"notifications": report.notifications, "fetches": report.fetches}


@shared_task(name="ingest.customer_data_purge")
def customer_data_purge() -> dict[str, int]:
    from ingest.data_retention import customer_data_retention_purge as purge

    return purge(now=timezone.now())


@shared_task(name="ingest.gap_audit")
def gap_audit() -> dict[str, int]:
    created = data_requests.gap_audit(now=timezone.now())
    return {"fetches": len(created)}


@shared_task(name="ingest.pipeline_prune")
def pipeline_prune() -> dict[str, int]:
    report = retention.pipeline_prune(now=timezone.now())
    return {
        "notifications": report.notifications,
        "fetches": report.fetches,
        "attempts": report.attempts,
        "bodies_dropped": report.bodies_dropped,
    }


@shared_task(name="ingest.readings_partitions_ahead")
def readings_partitions_ahead() -> dict[str, list[str]]:
    from ingest.partitions import months_ahead_ensure

    return {"created": [m.isoformat() for m in months_ahead_ensure(now=timezone.now())]}
