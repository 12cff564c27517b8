"""Operator replay: notifications, fetches and data requests put back to work from the admin or
`manage.py ingest_replay`. Never runs inline: a replayed row is reset and published through
`ingest.publish`, and the task that picks it up is the same one that ran it the first time
(safe to run twice, docs/reliability.md R5).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q

from ingest import publish
from ingest.models import DataRequest, Fetch, Notification


def _run_again(model: type[Fetch] | type[DataRequest]) -> dict[str, Any]:
    """A replayed row's run fields: PENDING with no attempts and no trace of the last run, as
    if it had just been created (its poison limit counts afresh)."""
    return {
        "status": model.Status.PENDING,
        "attempts": 0,
        "reason": "",
        "error": "",
        "traceback": "",
        "runner_task_id": "",
        "next_attempt_at": None,
    }


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
        publish.notification_enqueue(notification_id=notification_id)
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
        Fetch.objects.filter(pk=fetch.pk, status=fetch.status).update(**_run_again(Fetch))
        publish.fetch_enqueue(fetch_id=fetch.pk)
        count += 1
    return count


def data_requests_replay(*, data_request_ids: list[int]) -> int:
    """Operator replay of FAILED/POISONED requests: back to PENDING with no attempts, queued
    after commit. A request that failed part-way resumes after the last window PG&E answered;
    one whose windows were all answered is asked again whole. A subscription that already has
    an open request is left alone (one open request per subscription)."""
    count = 0
    for row in DataRequest.objects.filter(
        pk__in=data_request_ids, status__in=DataRequest.REPLAYABLE_STATUSES
    ):
        if DataRequest.objects.filter(
            kind=row.kind, subscription_id=row.subscription_id, status__in=DataRequest.OPEN_STATUSES
        ).exists():
            continue
        progress: dict[str, Any] = {}
        if row.requested_until is not None and row.requested_until >= row.end:
            progress = {"requested_until": None, "windows": 0, "answers": []}
        with transaction.atomic():
            if DataRequest.objects.filter(pk=row.pk, status=row.status).update(
                **_run_again(DataRequest), finished_at=None, **progress
            ):
                row_id = row.pk
                transaction.on_commit(
                    lambda row_id=row_id: publish.data_request_enqueue(data_request_id=row_id)
                )
                count += 1
    return count
