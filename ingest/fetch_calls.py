"""One GET of a fetch's URL from PG&E: the token the fetch names (never a default one), the
customers rule for a refused token (refresh once, retry once, report), one `FetchAttempt` row
per HTTP call, and `FetchFailed` for the permanent outcomes the caller stores on the row."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.utils import timezone

from customers import authorized_calls, tokens
from gascap.pge.errors import (
    PgeAuthError,
    PgeConfigurationError,
    PgeError,
    PgeTransientError,
    PgeUrlRefused,
)
from gascap.pge_budget.pacing import RateLimitTimeout
from gascap.pge_settings import pge_client
from ingest.claims import error_excerpt
from ingest.models import Fetch, FetchAttempt
from ingest.pge_resources import url_check

logger = logging.getLogger(__name__)


class FetchFailed(Exception):
    """A permanent outcome: stored on the row, never retried."""

    def __init__(self, reason: str, message: str, *, status: str = Fetch.Status.FAILED) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def _token_check(fetch: Fetch) -> None:
    """The fetch names whose token it needs — never a default one (threat T3): its
    subscription's, or the client token for Bulk and ReadingTypes."""
    if not fetch.subscription_id and fetch.kind not in (Fetch.Kind.BULK, Fetch.Kind.READING_TYPE):
        raise FetchFailed("unsupported_resource", f"No token rule for a {fetch.kind} resource")


_OUTCOMES: list[tuple[type[BaseException], str]] = [
    (PgeTransientError, FetchAttempt.Outcome.TRANSIENT),
    (RateLimitTimeout, FetchAttempt.Outcome.TRANSIENT),
    (PgeAuthError, FetchAttempt.Outcome.AUTH),
    (PgeConfigurationError, FetchAttempt.Outcome.CONFIGURATION),
    (PgeUrlRefused, FetchAttempt.Outcome.REFUSED),
    (PgeError, FetchAttempt.Outcome.PERMANENT),
]


def _http_get(fetch: Fetch, *, url: str, token: str):  # type: ignore[no-untyped-def]
    """One GET through the PG&E call budget (pacing included), recorded as one FetchAttempt;
    a call the budget refused (`BudgetExhausted`) was never sent and leaves no attempt."""
    url_check(url)  # again here: the row may have been edited or replayed since it was made
    started_at = timezone.now()
    t0 = time.monotonic()
    try:
        document = pge_client().fetch(url=url, access_token=token)
    except (PgeError, RateLimitTimeout) as exc:
        outcome = next(o for cls, o in _OUTCOMES if isinstance(exc, cls))
        FetchAttempt.objects.create(
            fetch=fetch,
            url=url,
            started_at=started_at,
            duration_ms=(time.monotonic() - t0) * 1000,
            status_code=getattr(exc, "status", None),
            outcome=outcome,
            error_code=str(getattr(exc, "code", ""))[:64],
            error_excerpt=error_excerpt(exc),
        )
        raise
    FetchAttempt.objects.create(
        fetch=fetch,
        url=url,
        started_at=started_at,
        duration_ms=(time.monotonic() - t0) * 1000,
        status_code=document.status,
        bytes_received=document.size or 0,
        outcome=FetchAttempt.Outcome.OK,
    )
    return document


def fetch_get(fetch: Fetch, *, url: str, now: datetime):  # type: ignore[no-untyped-def]
    """GET `url` by customers' rule for a refused token (`pge_call_authorized`: refresh once,
    retry once, report); each HTTP call is one attempt row."""
    _token_check(fetch)
    try:
        return authorized_calls.pge_call_authorized(
            lambda token: _http_get(fetch, url=url, token=token),
            subscription_id=fetch.subscription_id,
            url=url,
            now=now,
        )
    except tokens.AuthorizationUnavailable as exc:
        reason = str(getattr(exc, "reason", "") or "unknown_subscription")
        raise FetchFailed(
            "unknown_subscription" if "unknown" in reason else f"authorization_{reason}"[:64],
            f"No usable authorization for subscription {fetch.subscription_id} ({reason})",
        ) from None
    except authorized_calls.CallForbidden as refused:
        raise FetchFailed(refused.reason, error_excerpt(refused.error)) from None
    except PgeAuthError as exc:
        if exc.invalid_grant:
            raise FetchFailed("invalid_grant", error_excerpt(exc)) from None
        raise
