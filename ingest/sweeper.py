"""The sweeper: re-queue work the broker lost (docs/reliability.md R5, tests 11 and 38).

The database is the source of truth: a notification left RECEIVED/PROCESSING, or a fetch left
PENDING/RETRYING/RUNNING, past the sweep age has no live message carrying it (broker outage at
receipt, crash between commit and publish, a worker killed mid-task). Re-queueing is always
safe: the tasks claim their row with a status guard, so a message that is still in flight
makes the extra one a no-op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from ingest.models import Fetch, Notification
from ingest.notifications import fetch_enqueue, notification_enqueue

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


@dataclass
class SweepReport:
    notifications: int = 0
    fetches: int = 0


def stuck_sweep(*, now: datetime, age_seconds: int | None = None) -> SweepReport:
    """Re-queue notifications and fetches stuck longer than `age_seconds`."""
    age = timedelta(
        seconds=age_seconds if age_seconds is not None else settings.GASCAP_INGEST_SWEEP_AGE
    )
    cutoff = now - age
    report = SweepReport()

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
        # A RUNNING row past the hard time limit was abandoned by a dead worker.
        | Q(status=Fetch.Status.RUNNING, started_at__lt=now - lease)
    )
    for fetch_id in Fetch.objects.filter(stuck).values_list("pk", flat=True)[:SWEEP_BATCH]:
        if fetch_enqueue(fetch_id=fetch_id):
            report.fetches += 1
    if report.notifications or report.fetches:
        logger.warning(
            "sweeper re-queued %s notification(s) and %s fetch(es)",
            report.notifications,
            report.fetches,
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
        Notification.objects.filter(pk__in=notification_ids, status__in=replayable).values_list(
            "pk", flat=True
        )
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
