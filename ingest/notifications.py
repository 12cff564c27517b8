"""Notifications: receipt (the webhook's write), and processing a stored BatchList into fetch
rows. The webhook calls the first, `ingest.tasks` the second; the rows are made by
`ingest.fetch_rows` and the work published by name through `ingest.publish`.

A notification is an untrusted hint (docs/pge-protocol.md, Notifications): receipt only checks that
the body is a BatchList without a DTD and stores it; processing checks every resource URL against
PG&E's API base before a fetch row may exist for it, and coalesces URLs already being fetched.
"""

from __future__ import annotations

import hashlib
import logging
import re
import traceback as traceback_module
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F

from gascap.pge.batchlist import BatchListRejected, parse_batchlist
from gascap.pge.errors import PgeUrlRefused
from gascap.worker_heartbeat import lease_new, this_runner
from ingest import publish
from ingest.fetch_rows import fetch_closed_record, fetch_open_or_create
from ingest.models import Fetch, Notification
from ingest.pge_resources import (
    NOTIFIED_KINDS,
    STARTS_REQUEST_REFUSAL,
    ResourceRefused,
    fetch_kind,
    resource_parse,
    url_check,
)

logger = logging.getLogger(__name__)

REJECTED_PREFIX_BYTES = 4096
# PG&E sends all-zero correlation ids as placeholders; some integrators skip them.
_ZERO_CORRELATION = re.compile(r"^[0-]+$")


class NotificationBodyRejected(Exception):
    """The body is not a BatchList we accept; `reason` is BatchListRejected's code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        # Too many resources is a size problem (docs/reliability.md test 10); the rest: 400.
        self.http_status = 413 if reason == "too_many" else 400


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _max_resources() -> int:
    return int(getattr(settings, "GASCAP_NOTIFY_MAX_RESOURCES", 500))


def notification_body_check(*, body: bytes) -> list[str]:
    """The BatchList's resource URLs, or `NotificationBodyRejected`. defusedxml refuses a DTD
    before expanding anything, so a billion-laughs body costs microseconds (test 12)."""
    try:
        return parse_batchlist(body, max_resources=_max_resources())
    except BatchListRejected as exc:
        raise NotificationBodyRejected(getattr(exc, "reason", "malformed")) from None


# Statuses of an earlier copy that do not make a new delivery of the same body a duplicate.
_NOT_COVERING = (
    Notification.Status.DUPLICATE,
    Notification.Status.REJECTED,
    Notification.Status.FAILED,
    Notification.Status.POISONED,
)


def _names_authorization(urls: list[str]) -> bool:
    """The BatchList names an Authorization resource (a consent change notice)."""
    for url in urls:
        try:
            url_check(url)
            if resource_parse(url).kind == Fetch.Kind.AUTHORIZATION:
                return True
        except (PgeUrlRefused, ResourceRefused):
            continue
    return False


def notification_receive(
    *, body: bytes, headers: dict[str, str], remote_addr: str | None, now: datetime
) -> Notification:
    """Store one delivery and queue its processing once committed.

    Raises `NotificationBodyRejected` (nothing stored: the caller records the rejection) and
    lets `DatabaseError` through (the webhook answers 503).
    """
    urls = notification_body_check(body=body)
    digest = _sha256(body)
    window = timedelta(seconds=int(settings.GASCAP_NOTIFY_DUPLICATE_WINDOW))
    with transaction.atomic():
        # An earlier copy covers this one only if it did (or may still do) the work: a copy that
        # FAILED or was POISONED did not, so this one is processed again. A consent notice is
        # never a duplicate: the consent may have changed again since the first one polled.
        original = (
            None
            if _names_authorization(urls)
            else Notification.objects.filter(sha256=digest, received_at__gte=now - window)
            .exclude(status__in=_NOT_COVERING)
            .order_by("id")
            .first()
        )
        if original is not None:
            # Recorded (so a flood is visible) but no work: the original covers it.
            return Notification.objects.create(
                status=Notification.Status.DUPLICATE,
                received_at=now,
                body=body[:REJECTED_PREFIX_BYTES],
                body_size=len(body),
                body_truncated=len(body) > REJECTED_PREFIX_BYTES,
                sha256=digest,
                headers=headers,
                remote_addr=remote_addr,
                duplicate_of=original,
            )
        notification = Notification.objects.create(
            status=Notification.Status.RECEIVED,
            received_at=now,
            body=body,
            body_size=len(body),
            sha256=digest,
            headers=headers,
            remote_addr=remote_addr,
        )
        notification_id = notification.pk
        transaction.on_commit(lambda: publish.notification_enqueue(notification_id=notification_id))
    return notification


def notification_reject(
    *, body: bytes, headers: dict[str, str], remote_addr: str | None, reason: str, now: datetime
) -> Notification:
    """Record a refused delivery: hash, first 4 KiB and reason only (docs/reliability.md test 5)."""
    return Notification.objects.create(
        status=Notification.Status.REJECTED,
        received_at=now,
        body=body[:REJECTED_PREFIX_BYTES],
        body_size=len(body),
        body_truncated=len(body) > REJECTED_PREFIX_BYTES,
        sha256=_sha256(body),
        headers=headers,
        remote_addr=remote_addr,
        reason=reason[:64],
    )


@dataclass
class ProcessResult:
    status: str
    fetch_ids_queued: list[int] = field(default_factory=list)
    fetches_coalesced: int = 0
    refused: int = 0
    skipped: int = 0


def _placeholder(url: str) -> bool:
    query = parse_qs(urlsplit(url).query)
    ids = query.get("correlationID") or query.get("correlationId") or []
    return bool(ids) and all(_ZERO_CORRELATION.match(value) for value in ids)


def _claim(notification_id: int, now: datetime) -> Notification | None:
    # The claim names this worker process and a new lease: if the process dies, the sweeper
    # hands the row back to RECEIVED within two sweep periods (gascap/worker_heartbeat.py).
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.RECEIVED
    ).update(
        status=Notification.Status.PROCESSING,
        attempts=F("attempts") + 1,
        started_at=now,
        runner=this_runner(),
        lease=lease_new(),
    )
    if not claimed:
        return None
    return Notification.objects.get(pk=notification_id)


def _finish(notification: Notification, **fields: object) -> None:
    for name, value in fields.items():
        setattr(notification, name, value)
    notification.save(update_fields=list(fields))


def notification_process(*, notification_id: int, now: datetime) -> ProcessResult:
    """Turn one stored BatchList into fetch rows and queue them (after commit).

    Safe to run twice: only a RECEIVED row is claimed; a second delivery finds it PROCESSING
    or PROCESSED and returns at once.
    """
    notification = _claim(notification_id, now)
    if notification is None:
        current = Notification.objects.filter(pk=notification_id).values_list("status", flat=True)
        return ProcessResult(status=current[0] if current else "MISSING")
    if notification.attempts > int(settings.GASCAP_INGEST_POISON_LIMIT):
        _finish(
            notification,
            status=Notification.Status.POISONED,
            reason="poison_limit",
            error=f"processing started {notification.attempts - 1} times without finishing",
        )
        return ProcessResult(status=Notification.Status.POISONED)
    try:
        return _process(notification, now)
    except Exception as exc:
        logger.exception("notification %s failed", notification_id)
        _finish(
            notification,
            status=Notification.Status.FAILED,
            reason="error",
            error=f"{type(exc).__name__}: {str(exc)[:500]}",
            traceback=traceback_module.format_exc()[-8000:],
            processed_at=now,
        )
        return ProcessResult(status=Notification.Status.FAILED)


def _resource_record(
    notification: Notification, url: str, now: datetime
) -> str | tuple[Fetch, bool]:
    """Record what one BatchList URL becomes: "refused", "skipped", "poll" (an Authorization
    notice) or the (fetch, created) to queue. Nothing is ever sent to a refused URL (threat T2)."""
    try:
        url_check(url)
        resource = resource_parse(url)
    except (PgeUrlRefused, ResourceRefused) as refused:
        reason = getattr(refused, "reason", "") or "url_refused"
        fetch_closed_record(
            notification=notification,
            url=url,
            kind=Fetch.Kind.UNKNOWN,
            status=Fetch.Status.REFUSED,
            reason=reason,
            error=str(refused),
            now=now,
        )
        logger.warning("notification %s named a URL refused (%s)", notification.pk, reason)
        return "refused"
    kind = fetch_kind(resource)
    if resource.kind not in NOTIFIED_KINDS:
        fetch_closed_record(
            notification=notification,
            url=url,
            kind=kind,
            status=Fetch.Status.REFUSED,
            reason="unsupported_resource",
            now=now,
            subscription_id=resource.subscription_id,
            error="A notification names Batch/Bulk or Batch/Subscription with a correlationID, "
            "single resources under Subscription/{SID}/UsagePoint, or an Authorization",
        )
        return "refused"
    if resource.starts_request:
        # A GET here would ask PG&E for new data, not download notified data
        # (docs/pge-protocol.md, "Data APIs"): recorded, never fetched.
        fetch_closed_record(
            notification=notification,
            url=url,
            kind=kind,
            status=Fetch.Status.SKIPPED,
            reason="no_correlation",
            now=now,
            subscription_id=resource.subscription_id,
            error=STARTS_REQUEST_REFUSAL,
        )
        return "skipped"
    if kind == Fetch.Kind.AUTHORIZATION:
        # A consent change notice: the Authorization poll looks at it with the client token;
        # nothing is fetched from the URL itself. Every notice polls, even a second one inside
        # the coalescing window: the consent may have changed again since the first poll.
        fetch_closed_record(
            notification=notification,
            url=url,
            kind=kind,
            status=Fetch.Status.SKIPPED,
            reason="authorization_notice",
            error="",
            now=now,
            subscription_id=resource.subscription_id,
        )
        return "poll"
    return fetch_open_or_create(
        url=url,
        kind=kind,
        subscription_id=resource.subscription_id,
        now=now,
        notification=notification,
    )


def _process(notification: Notification, now: datetime) -> ProcessResult:
    try:
        urls = parse_batchlist(bytes(notification.body), max_resources=_max_resources())
    except BatchListRejected as exc:
        _finish(
            notification,
            status=Notification.Status.REJECTED,
            reason=str(getattr(exc, "reason", "malformed"))[:64],
            processed_at=now,
        )
        return ProcessResult(status=Notification.Status.REJECTED)
    result = ProcessResult(status=Notification.Status.PROCESSED)
    queued: list[int] = []
    poll = False
    with transaction.atomic():
        for url in urls:
            if _placeholder(url):
                result.skipped += 1
                continue
            outcome = _resource_record(notification, url, now)
            if outcome == "poll":
                poll = True
            elif isinstance(outcome, tuple):
                fetch, created = outcome
                if created:
                    queued.append(fetch.pk)
                else:
                    result.fetches_coalesced += 1
            elif outcome == "refused":
                result.refused += 1
            elif outcome == "skipped":
                result.skipped += 1
        _finish(
            notification,
            status=Notification.Status.PROCESSED,
            processed_at=now,
            resource_count=len(urls),
            skipped_count=result.skipped,
            reason="",
            error="",
            traceback="",
        )
        for fetch_id in queued:
            transaction.on_commit(
                lambda fetch_id=fetch_id: publish.fetch_enqueue(fetch_id=fetch_id)
            )
        if poll:
            transaction.on_commit(publish.authorizations_poll_enqueue)
    result.fetch_ids_queued = queued
    return result
