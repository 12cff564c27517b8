"""Fetch rows: making one (the open fetch of a URL, coalesced; or a closed record of a URL that
is never fetched).

Notifications, data requests and the gap audit make rows here; `ingest.fetches` runs them
(the claim and lease rules it shares with data requests are `ingest.claims`). One URL has at
most one open fetch (the unique constraint on `url_sha256` among open statuses,
docs/reliability.md R2).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from ingest.models import Fetch, Notification


def url_sha256(url: str) -> str:
    """The digest a fetch row is coalesced on (`Fetch.url_sha256`)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def fetch_open_or_create(
    *,
    url: str,
    kind: str,
    subscription_id: str,
    now: datetime,
    notification: Notification | None = None,
    parent: Fetch | None = None,
) -> tuple[Fetch, bool]:
    """The open fetch for `url`, or a recent successful one (coalescing, docs/reliability.md R2),
    or a new PENDING row. Returns (fetch, created). Safe against a concurrent creator."""
    digest = url_sha256(url)
    window = timedelta(seconds=int(settings.GASCAP_NOTIFY_DUPLICATE_WINDOW))
    recent = Q(status__in=Fetch.OPEN_STATUSES) | Q(
        status__in=[Fetch.Status.INGESTED, Fetch.Status.SKIPPED], created_at__gte=now - window
    )
    existing = Fetch.objects.filter(recent, url_sha256=digest).order_by("-id").first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            fetch = Fetch.objects.create(
                notification=notification,
                parent=parent,
                url=url,
                url_sha256=digest,
                kind=kind,
                subscription_id=subscription_id,
                status=Fetch.Status.PENDING,
                created_at=now,
            )
    except IntegrityError:
        # Another worker created the open row between our read and our insert.
        existing = Fetch.objects.filter(url_sha256=digest, status__in=Fetch.OPEN_STATUSES).first()
        if existing is None:
            raise
        return existing, False
    return fetch, True


def fetch_closed_record(
    *,
    notification: Notification,
    url: str,
    kind: str,
    status: str,
    reason: str,
    error: str,
    now: datetime,
    subscription_id: str = "",
) -> Fetch:
    """A fetch row recorded for the operator that is never run (a URL refused or skipped)."""
    return Fetch.objects.create(
        notification=notification,
        url=url[:2000],
        url_sha256=url_sha256(url),
        kind=kind,
        subscription_id=subscription_id,
        status=status,
        reason=reason,
        error=error[:500],
        created_at=now,
        finished_at=now,
    )
