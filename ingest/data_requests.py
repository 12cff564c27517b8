"""Asking PG&E for data: the asynchronous Subscription request (PG&E answers 202 and notifies),
the daily request (per subscription, or one Bulk request), and the gap audit, which turns
missing intervals into synchronous UsagePoint fetches for exactly the missing days.

Windows are at most `GASCAP_INGEST_REQUEST_MAX_DAYS` (~30) per call: integrators ask for no
more per request and pause between calls (docs/pge-protocol.md, "Data APIs"); every call
passes the PG&E call budget inside the client (pacing, hourly and daily caps). The callers
(tasks) declare the work's priority.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Max, Min

from gascap.pge.errors import PgeAuthError
from gascap.pge.urls import published_params
from ingest.models import Fetch, IntervalReading, MeterReading
from ingest.notifications import fetch_enqueue, fetch_open_or_create

logger = logging.getLogger(__name__)


def _pge_client():  # type: ignore[no-untyped-def]
    from gascap.pge_settings import pge_client

    return pge_client()


def _max_days() -> int:
    return max(1, int(settings.GASCAP_INGEST_REQUEST_MAX_DAYS))


def request_windows(*, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most the per-call maximum."""
    step = timedelta(days=_max_days())
    windows = []
    cursor = start
    while cursor < end:
        windows.append((cursor, min(cursor + step, end)))
        cursor += step
    return windows


def subscription_last_data(*, subscription_id: str) -> datetime | None:
    """End of the newest interval stored for the subscription's usage points, if any."""
    latest = IntervalReading.objects.filter(
        meter_reading__usage_point__authorization__subscription_id=subscription_id
    ).aggregate(last=Max("start"))["last"]
    return latest


def _history_start(authorization, now: datetime) -> datetime:  # type: ignore[no-untyped-def]
    # The consent's published period if PG&E told us, else the scope's HistoryLength (seconds).
    # Never further back than the configured backfill (PG&E keeps about two years).
    candidates = [now - timedelta(days=settings.GASCAP_INGEST_INITIAL_HISTORY_DAYS)]
    if authorization.published_start:
        candidates.append(authorization.published_start)
    else:
        history = (authorization.scope_params or {}).get("HistoryLength") or []
        try:
            candidates.append(now - timedelta(seconds=int(history[0])))
        except (IndexError, TypeError, ValueError):
            candidates.append(now - timedelta(days=_max_days()))
    return max(candidates)


@dataclass
class RequestReport:
    subscription_id: str
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def subscription_data_request(
    *,
    authorization_id: int,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> RequestReport:
    """Ask PG&E asynchronously for a subscription's data (202; the notification follows).

    Without `start`: from the end of the last stored interval (one day of overlap: PG&E
    re-sends corrections), or the consent's history on the first request.
    Raises AuthorizationUnavailable / PgeError for the task to sort out.
    """
    from customers import services as customer_services
    from customers.models import Authorization

    authorization = Authorization.objects.get(pk=authorization_id)
    sid = authorization.subscription_id or ""
    if not sid:
        raise customer_services.AuthorizationUnavailable("pending", None)
    end = end or now
    if start is None:
        last = subscription_last_data(subscription_id=sid)
        start = last - timedelta(days=1) if last else _history_start(authorization, now)
    report = RequestReport(subscription_id=sid)
    client = _pge_client()
    for window_start, window_end in request_windows(start=start, end=end):
        answer = _with_refresh(
            lambda token, ws=window_start, we=window_end: client.request_subscription_async(
                subscription_id=sid, published_min=ws, published_max=we, access_token=token
            ),
            subscription_id=sid,
            now=now,
        )
        _answer_record(answer, kind=Fetch.Kind.SUBSCRIPTION, subscription_id=sid, now=now)
        report.windows.append((window_start, window_end))
        report.statuses.append(answer.status)
    logger.info("asked PG&E for %s window(s) of subscription %s", len(report.windows), sid)
    return report


def _with_refresh(call, *, subscription_id: str, now: datetime):  # type: ignore[no-untyped-def]
    """`call(token)` with the subscription's token; a 403 refreshes once and retries once."""
    from customers import services as customer_services

    token = customer_services.access_token_for_subscription(
        subscription_id=subscription_id, now=now
    )
    try:
        return call(token)
    except PgeAuthError as exc:
        if exc.invalid_grant:
            raise
    token = customer_services.access_token_for_subscription(
        subscription_id=subscription_id, now=now, force_refresh=True
    )
    try:
        return call(token)
    except PgeAuthError:
        customer_services.authorization_report_forbidden(
            subscription_id=subscription_id,
            url=_pge_client().subscription_url(subscription_id=subscription_id),
            now=now,
        )
        raise


def _answer_record(answer, *, kind: str, subscription_id: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """Only 202 accepts an asynchronous request (docs/pge-protocol.md, "Data APIs"): a 200 with
    the data is imported now, any other 2xx is recorded as unexpected — both as a fetch row the
    operator sees. A 202 records nothing: the notification brings the work."""
    if answer.accepted:
        return
    from ingest.fetches import fetch_record_answer

    fetch_record_answer(kind=kind, subscription_id=subscription_id, answer=answer, now=now)


def bulk_data_request(*, now: datetime) -> int:
    """One Batch/Bulk request for every consent, with the client token; PG&E's status (202)."""
    from customers import services as customer_services

    bulk_id = settings.GASCAP_PGE_THIRD_PARTY_ID
    token = customer_services.client_access_token(now=now)
    answer = _pge_client().request_bulk(
        bulk_id=bulk_id,
        published_min=now - timedelta(days=2),
        published_max=now,
        client_token=token,
    )
    _answer_record(answer, kind=Fetch.Kind.BULK, subscription_id="", now=now)
    return answer.status


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


def _local_zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def series_missing_days(
    *, meter_reading: MeterReading, first_day: date, last_day: date
) -> list[date]:
    """Local days in [first_day, last_day] with fewer intervals than the day holds.

    PG&E's days are Pacific days (23 h / 25 h on DST days); a gas day starts at local midnight
    + 1 s, so intervals are counted by the local day their start falls in.
    """
    zone = _local_zone()
    length = None
    if meter_reading.reading_type_id and meter_reading.reading_type.interval_length:
        length = meter_reading.reading_type.interval_length
    readings = IntervalReading.objects.filter(meter_reading=meter_reading)
    if length is None:
        common = readings.values("duration").annotate(n=Count("start")).order_by("-n").first()
        length = common["duration"] if common else None
    if not length:
        return []
    bounds = readings.aggregate(first=Min("start"))
    if bounds["first"] is None:
        return []
    first_day = max(first_day, bounds["first"].astimezone(zone).date())
    window_start, _ = _day_bounds(first_day, zone)
    _, window_end = _day_bounds(last_day, zone)
    counts: dict[date, int] = {}
    for start in readings.filter(start__gte=window_start, start__lt=window_end).values_list(
        "start", flat=True
    ):
        day = start.astimezone(zone).date()
        counts[day] = counts.get(day, 0) + 1
    missing = []
    day = first_day
    while day <= last_day:
        day_start, day_end = _day_bounds(day, zone)
        # Subtracting two datetimes that share a tzinfo is wall-clock arithmetic in Python
        # (always 24 h), so measure the day in UTC: PG&E's Pacific days are 23 h (92
        # quarter-hours) on the spring-forward day and 25 h (100) on the fall-back day.
        seconds = day_end.timestamp() - day_start.timestamp()
        expected = max(1, round(seconds / length))
        if counts.get(day, 0) < expected:
            missing.append(day)
        day += timedelta(days=1)
    return missing


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
    from customers.models import Authorization

    days = days or int(settings.GASCAP_INGEST_GAP_AUDIT_DAYS)
    zone = _local_zone()
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
            start, _ = _day_bounds(first, zone)
            _, end = _day_bounds(last, zone)
            fetches = usage_point_fetches_create(
                subscription_id=sid, usage_point_id=upid, start=start, end=end, now=now
            )
            created.extend(fetches)
    for fetch in created:
        fetch_enqueue(fetch_id=fetch.pk)
    if created:
        logger.info("gap audit: %s fetch(es) for missing days", len(created))
    return created


def subscription_usage_point_ids(*, subscription_id: str) -> list[str]:
    """Usage point ids of stored data bound to the subscription's authorization."""
    from ingest.models import UsagePoint

    return list(
        UsagePoint.objects.filter(authorization__subscription_id=subscription_id)
        .order_by("usage_point_id")
        .values_list("usage_point_id", flat=True)
    )
