"""The sweeper: re-queue work the broker lost or whose runner died (docs/reliability.md R5,
tests 11 and 38; issue 17). Beat runs it every GASCAP_INGEST_SWEEP_PERIOD seconds.

The database is the source of truth: a notification left RECEIVED/PROCESSING, or a fetch or a
data request left PENDING/RETRYING/RUNNING, past the sweep age has no live message carrying it
(broker outage at receipt, crash between commit and publish, a worker killed mid-task).
Re-queueing is always safe: the tasks claim their row with a status guard, so a message that
is still in flight makes the extra one a no-op.

A row being worked on names its runner (a worker process with a heartbeat,
gascap/worker_heartbeat.py). When that heartbeat is stale the runner is dead (the whole worker
was killed, its pool process was terminated): the row is handed back and re-queued at once,
not after the visibility timeout or the hard time limit. A runner that still beats keeps its
row however slow it is. Rows claimed outside a worker (no runner) keep the old rule: abandoned
after the hard time limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Model, Q

from gascap.worker_heartbeat import heartbeats_prune, orphans_release
from ingest import publish
from ingest.claims import row_abandoned
from ingest.models import DataRequest, Fetch, Notification

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


@dataclass
class SweepReport:
    notifications: int = 0
    fetches: int = 0
    data_requests: int = 0
    # Of those, rows whose runner had stopped beating (handed back at once).
    taken_over: int = 0


@dataclass(frozen=True)
class _Retried:
    """A model retried like a fetch (`ingest.claims`: PENDING/RUNNING/RETRYING, attempts,
    next_attempt_at, runner and lease), how to queue one of its rows, and its report field."""

    model: type[Model]
    enqueue: Callable[[int], bool]
    counter: str


def _retried() -> list[_Retried]:
    # Looked up at call time: tests replace the publishers on ingest.publish.
    return [
        _Retried(Fetch, lambda pk: publish.fetch_enqueue(fetch_id=pk), "fetches"),
        _Retried(
            DataRequest,
            lambda pk: publish.data_request_enqueue(data_request_id=pk),
            "data_requests",
        ),
    ]


def _count(report: SweepReport, counter: str) -> None:
    setattr(report, counter, getattr(report, counter) + 1)


def _runner_lost_take_over(*, now: datetime, report: SweepReport) -> None:
    """Hand back and re-queue the rows whose runner's heartbeat is stale."""
    for notification_id in orphans_release(
        queryset=Notification.objects.filter(status=Notification.Status.PROCESSING),
        fields={"status": Notification.Status.RECEIVED},
    ):
        report.taken_over += 1
        if publish.notification_enqueue(notification_id=notification_id):
            report.notifications += 1
    for retried in _retried():
        status = retried.model.Status  # type: ignore[attr-defined]
        for pk in orphans_release(
            queryset=retried.model._default_manager.filter(status=status.RUNNING),
            fields={
                "status": status.RETRYING,
                "reason": "runner_lost",
                "error": "the worker process running it stopped (heartbeat stale); re-queued",
                "next_attempt_at": now,
                "runner_task_id": "",
            },
        ):
            report.taken_over += 1
            if retried.enqueue(pk):
                _count(report, retried.counter)


def stuck_sweep(*, now: datetime, age_seconds: int | None = None) -> SweepReport:
    """Take over rows whose runner died, and re-queue notifications, fetches and data requests
    stuck longer than `age_seconds`."""
    age = timedelta(
        seconds=age_seconds if age_seconds is not None else settings.GASCAP_INGEST_SWEEP_AGE
    )
    cutoff = now - age
    report = SweepReport()
    _runner_lost_take_over(now=now, report=report)
    taken = report.fetches + report.data_requests

    # A PROCESSING notification whose run died: hand it back (the poison limit still counts).
    Notification.objects.filter(
        status=Notification.Status.PROCESSING, started_at__lt=cutoff
    ).update(status=Notification.Status.RECEIVED)
    for notification_id in Notification.objects.filter(
        status=Notification.Status.RECEIVED, received_at__lt=cutoff
    ).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if publish.notification_enqueue(notification_id=notification_id):
            report.notifications += 1

    for retried in _retried():
        status = retried.model.Status  # type: ignore[attr-defined]
        stuck = (
            Q(status=status.PENDING, created_at__lt=cutoff)
            | Q(status=status.RETRYING, next_attempt_at__lt=cutoff)
            | Q(status=status.RETRYING, next_attempt_at__isnull=True)
            # A RUNNING row past the lease (the hard time limit) was abandoned, whoever holds it.
            | row_abandoned(status, now=now)
        )
        for pk in retried.model._default_manager.filter(stuck).values_list("pk", flat=True)[
            :SWEEP_BATCH
        ]:
            if retried.enqueue(pk):
                _count(report, retried.counter)
    heartbeats_prune()
    if report.notifications or report.fetches or report.data_requests:
        logger.warning(
            "sweeper re-queued %s notification(s), %s fetch(es) and %s data request(s) (%s "
            "taken over from a dead runner, %s fetch(es) and data request(s) among them)",
            report.notifications,
            report.fetches,
            report.data_requests,
            report.taken_over,
            taken,
        )
    return report
