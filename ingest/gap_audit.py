"""The gap audit: find the local days a bound series lacks intervals on, and fetch exactly
those days with synchronous UsagePoint requests (fetch rows, so retries, attempts, the call
budget and the admin come with them). Beat runs it daily (`ingest.gap_audit`); the
`request_data --sync` command uses the same fetch rows."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings

from customers.models import Authorization
from gascap.pge.urls import published_params
from ingest import publish
from ingest.data_requests import request_windows
from ingest.fetch_rows import fetch_open_or_create
from ingest.models import Fetch, MeterReading
from ingest.selectors import day_bounds, local_zone, series_missing_days

logger = logging.getLogger(__name__)


def usage_point_fetch_url(
    *, subscription_id: str, usage_point_id: str, start: datetime, end: datetime
) -> str:
    """The synchronous UsagePoint URL (200 with the feed) for one window."""
    base = settings.GASCAP_PGE_API_BASE
    if not base.endswith("/"):
        base += "/"
    query = urlencode(published_params(start, end))
    return f"{base}Batch/Subscription/{subscription_id}/UsagePoint/{usage_point_id}?{query}"


def usage_point_fetches_create(
    *, subscription_id: str, usage_point_id: str, start: datetime, end: datetime, now: datetime
) -> list[Fetch]:
    """Fetch rows (queued on `pge_fetch` after commit) for a synchronous UsagePoint request
    over [start, end): the fetch machinery brings retries, attempts, the rate limit and the
    admin with it."""
    fetches = []
    for window_start, window_end in request_windows(start=start, end=end):
        url = usage_point_fetch_url(
            subscription_id=subscription_id,
            usage_point_id=usage_point_id,
            start=window_start,
            end=window_end,
        )
        fetch, created = fetch_open_or_create(
            url=url, kind=Fetch.Kind.SUBSCRIPTION, subscription_id=subscription_id, now=now
        )
        if created:
            fetches.append(fetch)
    return fetches


def _day_ranges(days: list[date]) -> list[tuple[date, date]]:
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def gap_audit(*, now: datetime, days: int | None = None) -> list[Fetch]:
    """Find missing intervals in the last `days` local days (ending the day before yesterday:
    PG&E publishes a day's data the next day) and fetch exactly those days, synchronously.

    Only usage points bound to an ACTIVE consent are audited, by the subscription they are
    bound to (never by the hrefs inside stored data: docs/espi.md, "Which usage points a
    document may write"): an ended consent, or an operator's unbound file, starts no fetch.
    """
    days = days or int(settings.GASCAP_INGEST_GAP_AUDIT_DAYS)
    zone = local_zone()
    last_day = now.astimezone(zone).date() - timedelta(days=2)
    first_day = last_day - timedelta(days=days - 1)
    per_usage_point: dict[tuple[str, str], list[date]] = {}
    audited = MeterReading.objects.filter(
        usage_point__authorization__status=Authorization.Status.ACTIVE
    ).select_related("usage_point__authorization", "reading_type")
    for series in audited:
        sid = series.usage_point.authorization.subscription_id  # type: ignore[union-attr]
        if not sid:
            continue
        missing = series_missing_days(meter_reading=series, first_day=first_day, last_day=last_day)
        if missing:
            per_usage_point.setdefault((sid, series.usage_point.usage_point_id), []).extend(missing)
    created: list[Fetch] = []
    for (sid, upid), missing_days in per_usage_point.items():
        for first, last in _day_ranges(missing_days):
            start, _ = day_bounds(first, zone)
            _, end = day_bounds(last, zone)
            fetches = usage_point_fetches_create(
                subscription_id=sid, usage_point_id=upid, start=start, end=end, now=now
            )
            created.extend(fetches)
    for fetch in created:
        publish.fetch_enqueue(fetch_id=fetch.pk)
    if created:
        logger.info("gap audit: %s fetch(es) for missing days", len(created))
    return created
