"""`DataRequest` rows: made by a consent (`ingest.subscription_request`) or the daily schedule
(`ingest.daily_data_request`), run once per delivery of `ingest.data_request_run`, retried like
a fetch (docs/reliability.md R5); an operator's replay is `ingest.replay`.

A run claims its row (`ingest.claims`: one conditional UPDATE naming this worker process and a
new lease, the attempt counted at claim time), asks PG&E window by window
(`ingest.data_requests`) and records progress after each answer, so a retried run resumes after
the last window PG&E answered. Outcomes:
- every window answered 202: REQUESTED (the notifications bring the data);
- a window answered 200 with the data: imported as a fetch row linked to the request;
  INGESTED when every such answer was imported, FAILED (the fetch's reason) otherwise;
- transient trouble (5xx, 429, timeouts, the rate limiter, the database): RETRYING with
  capped, jittered backoff; at GASCAP_INGEST_POISON_LIMIT attempts FAILED `retries_exhausted`,
  and a row started more times than the limit without finishing is POISONED;
- the call budget is used up: RETRYING `budget_wait` until its window opens, not an attempt;
- no usable consent, a refused token, configuration or permanent errors: FAILED at once.
Rows left PENDING/RETRYING by a lost message, or RUNNING by a dead runner, are re-queued by the
sweeper (`ingest.sweeper`) exactly as fetches are.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from customers.authorized_calls import CallForbidden
from customers.models import Authorization
from customers.selectors import active_authorizations
from customers.tokens import AuthorizationUnavailable
from gascap.pge.errors import (
    PgeAuthError,
    PgeConfigurationError,
    PgePermanentError,
    PgeTransientError,
)
from gascap.pge.gate import BudgetExhausted, Priority, call_priority
from gascap.pge_budget.pacing import RateLimitTimeout
from ingest import publish
from ingest.budget_plan import daily_request_mode
from ingest.claims import (
    RunResult,
    error_excerpt,
    row_budget_wait,
    row_fail,
    row_poison_check,
    row_retry,
    row_run,
    row_save,
)
from ingest.data_requests import (
    BULK_DAYS,
    bulk_window_ask,
    subscription_request_start,
    subscription_windows_ask,
)
from ingest.models import DataRequest, Fetch
from ops.log_context import log_context_set

logger = logging.getLogger(__name__)

Status = DataRequest.Status


# --- rows ------------------------------------------------------------------------------------


def _enqueue_on_commit(data_request_id: int, *, countdown: float | None = None) -> None:
    transaction.on_commit(
        lambda: publish.data_request_enqueue(data_request_id=data_request_id, countdown=countdown)
    )


def data_request_open(
    *,
    kind: str,
    origin: str,
    now: datetime,
    authorization_id: int | None = None,
    subscription_id: str = "",
    start: datetime | None = None,
) -> tuple[DataRequest, bool]:
    """The open request for this subscription (or the Bulk one), made if there is none and
    queued after commit. An open request that has not started yet is stretched to `now`
    instead of a second one (one open request per subscription: `ingest_datarequest_one_open`).
    Returns (row, created)."""
    same = DataRequest.objects.filter(
        kind=kind, subscription_id=subscription_id, status__in=DataRequest.OPEN_STATUSES
    )
    with transaction.atomic():
        existing = same.first()
        if existing is None:
            try:
                with transaction.atomic():
                    row = DataRequest.objects.create(
                        kind=kind,
                        origin=origin,
                        authorization_id=authorization_id,
                        subscription_id=subscription_id,
                        start=start,
                        end=now,
                        status=Status.PENDING,
                        created_at=now,
                    )
            except IntegrityError:  # made by a concurrent caller a moment ago
                existing = same.first()
            else:
                _enqueue_on_commit(row.pk)
                return row, True
        if existing is None:  # opened and finished in between: nothing left to coalesce with
            return data_request_open(
                kind=kind,
                origin=origin,
                now=now,
                authorization_id=authorization_id,
                subscription_id=subscription_id,
                start=start,
            )
        same.filter(
            pk=existing.pk, status__in=[Status.PENDING, Status.RETRYING], end__lt=now
        ).update(end=now)
    return existing, False


def subscription_data_request_open(
    *, authorization_id: int, origin: str, now: datetime
) -> tuple[DataRequest | None, bool]:
    """A consent's (or the schedule's) Subscription request. An authorization without a
    subscription id yet cannot be asked for: recorded as a FAILED row, not queued."""
    authorization = Authorization.objects.filter(pk=authorization_id).first()
    if authorization is None:
        logger.warning("data request for unknown authorization %s: nothing asked", authorization_id)
        return None, False
    if not authorization.subscription_id:
        row = DataRequest.objects.create(
            kind=DataRequest.Kind.SUBSCRIPTION,
            origin=origin,
            authorization=authorization,
            end=now,
            status=Status.FAILED,
            reason="authorization_pending",
            error="The authorization has no subscription id yet: nothing to ask PG&E for.",
            created_at=now,
            finished_at=now,
        )
        return row, True
    return data_request_open(
        kind=DataRequest.Kind.SUBSCRIPTION,
        origin=origin,
        now=now,
        authorization_id=authorization.pk,
        subscription_id=authorization.subscription_id,
    )


def daily_data_requests_open(*, now: datetime) -> tuple[str, int]:
    """The daily request: one Subscription request per active consent, or one Bulk request
    when those would not fit the call budget (`ingest.budget_plan`). Returns (mode, rows
    made); each row is queued after commit."""
    ids = list(active_authorizations().values_list("pk", flat=True))
    if daily_request_mode(consents=len(ids)) == "bulk":
        _, created = data_request_open(
            kind=DataRequest.Kind.BULK,
            origin=DataRequest.Origin.DAILY,
            now=now,
            start=now - timedelta(days=BULK_DAYS),
        )
        return "bulk", int(created)
    made = 0
    for authorization_id in ids:
        _, created = subscription_data_request_open(
            authorization_id=authorization_id, origin=DataRequest.Origin.DAILY, now=now
        )
        made += int(created)
    return "subscription", made


# --- one run ---------------------------------------------------------------------------------


def data_request_run(
    *, data_request_id: int, now: datetime, task_id: str | None = None
) -> RunResult:
    """Run data request `data_request_id` once (see the module docstring)."""
    return row_run(
        DataRequest,
        pk=data_request_id,
        now=now,
        task_id=task_id,
        run=lambda row: _run_claimed(row, now=now),
    )


def _run_claimed(row: DataRequest, *, now: datetime) -> RunResult:
    log_context_set(subscription_id=row.subscription_id)
    if row_poison_check(row, now=now):
        return RunResult(status=Status.POISONED, reason="poison_limit")
    try:
        with call_priority(Priority.SCHEDULED):
            _ask(row, now=now)
    except BudgetExhausted as exc:
        work = "bulk_request" if row.kind == DataRequest.Kind.BULK else "data_request"
        return row_budget_wait(row, now=now, exc=exc, requeue=_requeue, work=work)
    except AuthorizationUnavailable as exc:
        return _fail(row, reason=f"authorization_{exc.reason}"[:64], error=error_excerpt(exc))
    except CallForbidden as exc:
        return _fail(row, reason=exc.reason, error=error_excerpt(exc.error))
    except (PgeTransientError, RateLimitTimeout, DatabaseError) as exc:
        code = str(getattr(exc, "code", "") or type(exc).__name__)[:64]
        error = f"{code}: {error_excerpt(exc)}"
        return row_retry(row, exc=exc, requeue=_requeue, exhausted_error=error)
    except PgeAuthError as exc:
        return _fail(row, reason="invalid_grant" if exc.invalid_grant else "auth", error=str(exc))
    except PgeConfigurationError as exc:
        return _fail(row, reason="configuration", error=error_excerpt(exc))
    except PgePermanentError as exc:
        return _fail(row, reason=exc.code[:64] or "permanent", error=error_excerpt(exc))
    except Exception as exc:
        logger.exception("data request %s failed unexpectedly", row.pk)
        reason = f"error_{type(exc).__name__}"[:64]
        return _fail(row, reason=reason, error=error_excerpt(exc), tb=True)
    return _finish(row)


def _ask(row: DataRequest, *, now: datetime) -> None:
    """Ask PG&E for the windows not answered yet, recording each answer on the row."""

    def answered(window_start: datetime, window_end: datetime, answer: Any, fetch: Any) -> None:
        entry = {
            "start": window_start.isoformat(),
            "end": window_end.isoformat(),
            "status": int(answer.status),
            "fetch": fetch.pk if fetch is not None else None,
            "outcome": fetch.status if fetch is not None else None,
            "reason": fetch.reason if fetch is not None else "",
        }
        row_save(
            row,
            requested_until=window_end,
            windows=row.windows + 1,
            answers=[*row.answers, entry],
        )

    if row.kind == DataRequest.Kind.BULK:
        start = row.start or row.end - timedelta(days=BULK_DAYS)
        if row.requested_until is None:
            answer, fetch = bulk_window_ask(
                start=start, end=row.end, now=now, data_request_id=row.pk
            )
            answered(start, row.end, answer, fetch)
        return
    authorization = row.authorization
    if authorization is None:
        raise AuthorizationUnavailable("unknown", row.subscription_id)
    start = row.start
    if start is None:
        start = subscription_request_start(authorization=authorization, now=now)
        row_save(row, start=start)
    subscription_windows_ask(
        subscription_id=row.subscription_id,
        start=row.requested_until or start,
        end=row.end,
        now=now,
        on_answer=answered,
        data_request_id=row.pk,
    )


def _finish(row: DataRequest, **extra: object) -> RunResult:
    """Every window answered: REQUESTED when all were 202, else by the answers' fetch rows."""
    inline = [a for a in row.answers if a.get("status") != 202]
    failed = [a for a in inline if a.get("outcome") != Fetch.Status.INGESTED]
    if failed:
        first = failed[0]
        return _fail(
            row,
            reason=str(first.get("reason") or "unexpected_status")[:64],
            error=f"{len(failed)} window(s) answered without an accepted request or importable "
            f"data; the first: PG&E answered {first.get('status')} for {first.get('start')} to "
            f"{first.get('end')} (fetch {first.get('fetch')})",
        )
    status = Status.INGESTED if inline else Status.REQUESTED
    row_save(
        row,
        status=status,
        reason="",
        error="",
        traceback="",
        finished_at=timezone.now(),
        runner_task_id="",
        **extra,
    )
    logger.info("data request %s %s: %s window(s)", row.pk, status.lower(), row.windows)
    return RunResult(status=status)


def _fail(
    row: DataRequest, *, reason: str, error: str, status: str = Status.FAILED, tb: bool = False
) -> RunResult:
    return row_fail(row, status=status, reason=reason, error=error, with_traceback=tb)


def _requeue(data_request_id: int, delay: float) -> bool:
    return publish.data_request_enqueue(data_request_id=data_request_id, countdown=delay)
