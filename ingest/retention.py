"""Retention of the pipeline's own records: notifications, fetches and their attempts, and the
data requests we made of PG&E.

Readings are the product and are kept; the pipeline rows that brought them are an audit trail
whose value fades in weeks. At a million customers the daily Bulk alone writes tens of
thousands of fetch and attempt rows a day (docs/scale.md), so without pruning these tables grow
without bound and slow the sweeper's and the admin's queries.

`pipeline_prune` deletes rows older than `GASCAP_PIPELINE_RETENTION_DAYS` and empties the
bodies of PROCESSED notifications older than `GASCAP_NOTIFICATION_BODY_RETENTION_DAYS`:

- in id windows of at most `GASCAP_PIPELINE_PRUNE_BATCH` ids, each window its own short
  transaction, so no statement holds row locks on more than one window and the webhook and
  workers writing new rows (higher ids) never wait on it;
- never open work: a fetch or data request still PENDING/RUNNING/RETRYING, a notification
  still RECEIVED or PROCESSING, a notification an open fetch points at, a fetch an open fetch
  descends from.
  The status test is in the DELETE itself, so a row replayed between two windows is kept
  (PostgreSQL re-checks the WHERE of a row updated concurrently);
- a processed notification whose body was emptied keeps its size and SHA-256 (the duplicate
  check compares digests) and can no longer be replayed (`replay.notifications_replay`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef, Q

from ingest.models import DataRequest, Fetch, FetchAttempt, Notification

logger = logging.getLogger(__name__)


@dataclass
class PruneReport:
    notifications: int = 0
    fetches: int = 0
    attempts: int = 0
    bodies_dropped: int = 0
    data_requests: int = 0
    batches: int = 0


def _windows(queryset, batch: int):  # type: ignore[no-untyped-def]
    """(low, high) id windows of `batch` ids covering the candidates' id span."""
    span = queryset.aggregate(low=Min("pk"), high=Max("pk"))
    if span["low"] is None:
        return
    low = span["low"]
    while low <= span["high"]:
        yield low, low + batch
        low += batch


def _delete(queryset) -> int:  # type: ignore[no-untyped-def]
    """One DELETE statement for the queryset: no objects loaded, no cascade collection (the
    callers have already dealt with every row pointing at these)."""
    return int(queryset._raw_delete(queryset.db))


def _fetches_prunable(cutoff: datetime):  # type: ignore[no-untyped-def]
    open_child = Fetch.objects.filter(parent=OuterRef("pk"), status__in=Fetch.OPEN_STATUSES)
    return Fetch.objects.filter(created_at__lt=cutoff, status__in=Fetch.TERMINAL_STATUSES).exclude(
        Exists(open_child)
    )


def _notifications_prunable(cutoff: datetime):  # type: ignore[no-untyped-def]
    open_fetch = Fetch.objects.filter(notification=OuterRef("pk"), status__in=Fetch.OPEN_STATUSES)
    return Notification.objects.filter(received_at__lt=cutoff).exclude(
        Q(status__in=Notification.STUCK_STATUSES) | Q(Exists(open_fetch))
    )


def _window_lock(prunable, low: int, high: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The ids of the prunable rows in the window [low, high), locked for this transaction.
    Rows a worker holds locked are skipped (next run's business), never waited on."""
    return list(
        prunable.filter(pk__gte=low, pk__lt=high)
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )


def _prune_fetch_window(cutoff: datetime, low: int, high: int, report: PruneReport) -> None:
    with transaction.atomic():
        ids = _window_lock(_fetches_prunable(cutoff), low, high)
        if not ids:
            return
        # Explicit statements instead of Model.delete()'s collector: bounded by the window,
        # no objects loaded. Younger children keep their row, without the parent link.
        report.attempts += _delete(FetchAttempt.objects.filter(fetch_id__in=ids))
        Fetch.objects.filter(parent_id__in=ids).update(parent=None)
        report.fetches += _delete(
            Fetch.objects.filter(pk__in=ids, status__in=Fetch.TERMINAL_STATUSES)
        )
        report.batches += 1


def _prune_notification_window(cutoff: datetime, low: int, high: int, report: PruneReport) -> None:
    with transaction.atomic():
        ids = _window_lock(_notifications_prunable(cutoff), low, high)
        if not ids:
            return
        Fetch.objects.filter(notification_id__in=ids).update(notification=None)
        Notification.objects.filter(duplicate_of_id__in=ids).update(duplicate_of=None)
        report.notifications += _delete(
            Notification.objects.filter(pk__in=ids).exclude(status__in=Notification.STUCK_STATUSES)
        )
        report.batches += 1


def _data_requests_prunable(cutoff: datetime):  # type: ignore[no-untyped-def]
    return DataRequest.objects.filter(created_at__lt=cutoff).exclude(
        status__in=DataRequest.OPEN_STATUSES
    )


def _prune_data_request_window(cutoff: datetime, low: int, high: int, report: PruneReport) -> None:
    with transaction.atomic():
        ids = _window_lock(_data_requests_prunable(cutoff), low, high)
        if not ids:
            return
        Fetch.objects.filter(data_request_id__in=ids).update(data_request=None)
        report.data_requests += _delete(
            DataRequest.objects.filter(pk__in=ids).exclude(status__in=DataRequest.OPEN_STATUSES)
        )
        report.batches += 1


def _drop_body_window(cutoff: datetime, low: int, high: int, report: PruneReport) -> None:
    with transaction.atomic():
        report.bodies_dropped += (
            Notification.objects.filter(
                pk__gte=low,
                pk__lt=high,
                received_at__lt=cutoff,
                status=Notification.Status.PROCESSED,
                body_size__gt=0,
            )
            .exclude(body=b"")
            .update(body=b"")
        )
        report.batches += 1


def body_dropped(notification: Notification) -> bool:
    """The retention job emptied this notification's body (it had one)."""
    return notification.body_size > 0 and not bytes(notification.body or b"")


def pipeline_prune(
    *,
    now: datetime,
    retention_days: int | None = None,
    body_retention_days: int | None = None,
    batch: int | None = None,
) -> PruneReport:
    """Delete pipeline rows past retention and drop old processed bodies; 0 days turns each off."""
    days = settings.GASCAP_PIPELINE_RETENTION_DAYS if retention_days is None else retention_days
    body_days = (
        settings.GASCAP_NOTIFICATION_BODY_RETENTION_DAYS
        if body_retention_days is None
        else body_retention_days
    )
    size = max(1, batch or settings.GASCAP_PIPELINE_PRUNE_BATCH)
    report = PruneReport()
    if days > 0:
        cutoff = now - timedelta(days=days)
        # Fetches first: the notifications they pointed at are then free to go.
        for low, high in _windows(_fetches_prunable(cutoff), size):
            _prune_fetch_window(cutoff, low, high, report)
        for low, high in _windows(_notifications_prunable(cutoff), size):
            _prune_notification_window(cutoff, low, high, report)
        for low, high in _windows(_data_requests_prunable(cutoff), size):
            _prune_data_request_window(cutoff, low, high, report)
    if body_days > 0:
        cutoff = now - timedelta(days=body_days)
        pending = Notification.objects.filter(
            received_at__lt=cutoff, status=Notification.Status.PROCESSED, body_size__gt=0
        ).exclude(body=b"")
        for low, high in _windows(pending, size):
            _drop_body_window(cutoff, low, high, report)
    if report.notifications or report.fetches or report.bodies_dropped or report.data_requests:
        logger.info(
            "pipeline pruned: %s notification(s), %s fetch(es), %s attempt(s), %s body(ies), "
            "%s data request(s)",
            report.notifications,
            report.fetches,
            report.attempts,
            report.bodies_dropped,
            report.data_requests,
        )
    return report
