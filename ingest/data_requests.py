"""Asking PG&E for data: the asynchronous Subscription request (PG&E answers 202 and notifies)
and the Bulk request, window by window, with the one rule for a refused token
(`customers.authorized_calls.pge_call_authorized`), and the answer recorded (a 200 carrying the data
is imported as a fetch row). The `DataRequest` rows that make these calls retryable and
visible are `ingest.data_request_runs`; the gap audit is `ingest.gap_audit`.

Windows are at most `GASCAP_INGEST_REQUEST_MAX_DAYS` (~30) per call: integrators ask for no
more per request and pause between calls (docs/pge-protocol.md, "Data APIs"); every call
passes the PG&E call budget inside the client (pacing, hourly and daily caps). The callers
(tasks) declare the work's priority.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max

from customers import authorized_calls, tokens
from customers.models import Authorization
from gascap.pge_settings import pge_client
from ingest.fetch_documents import fetch_record_answer
from ingest.models import Fetch, IntervalReading

logger = logging.getLogger(__name__)

# The daily Bulk request asks for the last two days (PG&E publishes a day's data the next day).
BULK_DAYS = 2


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


def subscription_request_start(*, authorization, now: datetime) -> datetime:  # type: ignore[no-untyped-def]
    """Where a subscription's request starts: the end of the last stored interval (one day of
    overlap: PG&E re-sends corrections), or the consent's history on the first request."""
    last = subscription_last_data(subscription_id=authorization.subscription_id)
    return last - timedelta(days=1) if last else _history_start(authorization, now)


# Called with each window PG&E answered, and the fetch row of an answer that was not 202.
OnAnswer = Callable[[datetime, datetime, Any, "Fetch | None"], None]


def subscription_windows_ask(
    *,
    subscription_id: str,
    start: datetime,
    end: datetime,
    now: datetime,
    on_answer: OnAnswer,
    data_request_id: int | None = None,
) -> None:
    """Ask PG&E for [start, end) of the subscription, one window per call; `on_answer` runs
    after each answer (so a retried request resumes after the last window answered).
    Raises AuthorizationUnavailable, CallForbidden, BudgetExhausted or PgeError."""
    client = pge_client()
    for window_start, window_end in request_windows(start=start, end=end):
        answer = authorized_calls.pge_call_authorized(
            lambda token, ws=window_start, we=window_end: client.request_subscription_async(
                subscription_id=subscription_id,
                published_min=ws,
                published_max=we,
                access_token=token,
            ),
            subscription_id=subscription_id,
            url=client.subscription_url(subscription_id=subscription_id),
            now=now,
        )
        fetch = _answer_record(
            answer,
            kind=Fetch.Kind.SUBSCRIPTION,
            subscription_id=subscription_id,
            now=now,
            data_request_id=data_request_id,
        )
        on_answer(window_start, window_end, answer, fetch)


def subscription_data_request(
    *,
    authorization_id: int,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> RequestReport:
    """Ask PG&E asynchronously for a subscription's data now, without a `DataRequest` row (the
    `request_data` command; the schedule and consents make rows). Without `start`:
    `subscription_request_start`. Raises AuthorizationUnavailable / CallForbidden / PgeError."""
    authorization = Authorization.objects.get(pk=authorization_id)
    sid = authorization.subscription_id or ""
    if not sid:
        raise tokens.AuthorizationUnavailable("pending", None)
    report = RequestReport(subscription_id=sid)

    def answered(window_start: datetime, window_end: datetime, answer: Any, _: Any) -> None:
        report.windows.append((window_start, window_end))
        report.statuses.append(answer.status)

    subscription_windows_ask(
        subscription_id=sid,
        start=start or subscription_request_start(authorization=authorization, now=now),
        end=end or now,
        now=now,
        on_answer=answered,
    )
    logger.info("asked PG&E for %s window(s) of subscription %s", len(report.windows), sid)
    return report


def _answer_record(  # type: ignore[no-untyped-def]
    answer, *, kind: str, subscription_id: str, now: datetime, data_request_id: int | None
) -> Fetch | None:
    """Only 202 accepts an asynchronous request (docs/pge-protocol.md, "Data APIs"): a 200 with
    the data is imported now, any other 2xx is recorded as unexpected — both as a fetch row the
    operator sees. A 202 records nothing: the notification brings the work."""
    if answer.accepted:
        return None
    return fetch_record_answer(
        kind=kind,
        subscription_id=subscription_id,
        answer=answer,
        now=now,
        data_request_id=data_request_id,
    )


def bulk_window_ask(
    *, start: datetime, end: datetime, now: datetime, data_request_id: int | None = None
) -> tuple[Any, Fetch | None]:
    """One Batch/Bulk request for every consent over [start, end), with the client token (by
    the same refused-token rule); PG&E's answer and the fetch row of a non-202 answer."""
    client = pge_client()
    answer = authorized_calls.pge_call_authorized(
        lambda token: client.request_bulk(
            bulk_id=settings.GASCAP_PGE_THIRD_PARTY_ID,
            published_min=start,
            published_max=end,
            client_token=token,
        ),
        subscription_id="",
        url="",
        now=now,
    )
    fetch = _answer_record(
        answer, kind=Fetch.Kind.BULK, subscription_id="", now=now, data_request_id=data_request_id
    )
    return answer, fetch


def bulk_data_request(*, now: datetime) -> int:
    """The daily Bulk request (the last two days) now, without a row; PG&E's status (202)."""
    answer, _ = bulk_window_ask(start=now - timedelta(days=BULK_DAYS), end=now, now=now)
    return int(answer.status)
