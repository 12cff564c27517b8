"""The sweeper: re-queue work the broker lost or whose runner died (docs/reliability.md R5,
tests 11 and 38; issue 17). Beat runs it every GASCAP_INGEST_SWEEP_PERIOD seconds.

The database is the source of truth: a notification left RECEIVED/PROCESSING, or a fetch left
PENDING/RETRYING/RUNNING, past the sweep age has no live message carrying it (broker outage at
receipt, crash between commit and publish, a worker killed mid-task). Re-queueing is always
safe: the tasks claim their row with a status guard, so a message that is still in flight
makes the extra one a no-op.

A row being worked on names its runner (a worker process with a heartbeat,
gascap/worker_heartbeat.py). When that heartbeat is stale the runner is dead (the whole worker
was killed, its pool process was terminated): the row is handed back and re-queued at once,
not after the visibility timeout or the hard time limit. A runner that still beats keeps its
row however slow it is. Rows claimed outside a worker (no runner) keep the old rule: abandoned
after the hard time limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from gascap.worker_heartbeat import heartbeats_prune, orphans_release
from ingest.models import Fetch, Notification
from ingest.notifications import fetch_enqueue, notification_enqueue

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


@dataclass
class SweepReport:
    notifications: int = 0
    fetches: int = 0
    # Of those, rows whose runner had stopped beating (handed back at once).
    taken_over: int = 0


def _runner_lost_take_over(*, now: datetime, report: SweepReport) -> None:
    """Hand back and re-queue the rows whose runner's heartbeat is stale."""
    for notification_id in orphans_release(
        queryset=Notification.objects.filter(status=Notification.Status.PROCESSING),
        fields={"status": Notification.Status.RECEIVED},
    ):
        report.taken_over += 1
        if notification_enqueue(notification_id=notification_id):
            report.notifications += 1
    for fetch_id in orphans_release(
        queryset=Fetch.objects.filter(status=Fetch.Status.RUNNING),
        fields={
            "status": Fetch.Status.RETRYING,
            "reason": "runner_lost",
            "error": "the worker process running it stopped (heartbeat stale); re-queued",
            "next_attempt_at": now,
            "runner_task_id": "",
        },
    ):
        report.taken_over += 1
        if fetch_enqueue(fetch_id=fetch_id):
            report.fetches += 1


def stuck_sweep(*, now: datetime, age_seconds: int | None = None) -> SweepReport:
    """Take over rows whose runner died, and re-queue notifications and fetches stuck longer
    than `age_seconds`."""
    age = timedelta(
        seconds=age_seconds if age_seconds is not None else settings.GASCAP_INGEST_SWEEP_AGE
    )
    cutoff = now - age
    report = SweepReport()
    _runner_lost_take_over(now=now, report=report)
    taken = report.fetches

    # A PROCESSING notification whose run died: hand it back (the poison limit still counts).
    Notification.objects.filter(
        status=Notification.Status.PROCESSING, started_at__lt=cutoff
    ).update(status=Notification.Status.RECEIVED)
    for notification_id in Notification.objects.filter(
        status=Notification.Status.RECEIVED, received_at__lt=cutoff
    ).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if notification_enqueue(notification_id=notification_id):
            report.notifications += 1

    lease = timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT) + 60)
    stuck = (
        Q(status=Fetch.Status.PENDING, created_at__lt=cutoff)
        | Q(status=Fetch.Status.RETRYING, next_attempt_at__lt=cutoff)
        | Q(status=Fetch.Status.RETRYING, next_attempt_at__isnull=True)
        # A RUNNING row past the hard time limit was abandoned, whoever holds it.
        | Q(status=Fetch.Status.RUNNING, started_at__lt=now - lease)
    )
    for fetch_id in Fetch.objects.filter(stuck).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if fetch_enqueue(fetch_id=fetch_id):
            report.fetches += 1
    heartbeats_prune()
    if report.notifications or report.fetches:
        logger.warning(
            "sweeper re-queued %s notification(s) and %s fetch(es) (%s taken over from a "
            "dead runner, %s fetch(es) among them)",
            report.notifications,
            report.fetches,
            report.taken_over,
            taken,
        )
    return report


def notifications_replay(*, notification_ids: list[int]) -> int:
    """Operator replay: FAILED/POISONED/REJECTED/PROCESSED rows back to RECEIVED and queued.

    Never runs inline. A replay of a processed notification changes nothing: its fetches are
    coalesced with the recent ones and the readings upsert is write-free for equal values.
    """
    replayable = [
        Notification.Status.FAILED,
        Notification.Status.POISONED,
        Notification.Status.PROCESSED,
        Notification.Status.RECEIVED,
    ]
    ids = list(
        Notification.objects.filter(pk__in=notification_ids, status__in=replayable)
        # A body the retention job emptied has nothing left to process (ingest/retention.py).
        .exclude(Q(body_size__gt=0) & Q(body=b""))
        .values_list("pk", flat=True)
    )
    Notification.objects.filter(pk__in=ids).update(
        status=Notification.Status.RECEIVED, attempts=0, reason="", error="", traceback=""
    )
    for notification_id in ids:
        notification_enqueue(notification_id=notification_id)
    return len(ids)


def fetches_replay(*, fetch_ids: list[int]) -> int:
    """Operator replay of FAILED/POISONED/INGESTED fetches: back to PENDING and queued.

    A fetch whose URL already has an open fetch is left alone (one open fetch per URL)."""
    replayable = [Fetch.Status.FAILED, Fetch.Status.POISONED, Fetch.Status.INGESTED]
    count = 0
    for fetch in Fetch.objects.filter(pk__in=fetch_ids, status__in=replayable):
        if Fetch.objects.filter(
            url_sha256=fetch.url_sha256, status__in=Fetch.OPEN_STATUSES
        ).exists():
            continue
        Fetch.objects.filter(pk=fetch.pk, status=fetch.status).update(
            status=Fetch.Status.PENDING,
            attempts=0,
            reason="",
            error="",
            traceback="",
            runner_task_id="",
            next_attempt_at=None,
        )
        fetch_enqueue(fetch_id=fetch.pk)
        count += 1
    return count
