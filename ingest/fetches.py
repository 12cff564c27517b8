"""Running one fetch: claim the row, pick the token the URL names, GET it from PG&E (one
attempt row per HTTP call), import the document, fetch the ReadingTypes it lacked, and record
the outcome — retry transient failures with backoff, fail permanent ones once.

Safe to run twice (docs/reliability.md R5): the row is claimed with one conditional UPDATE, so a
second delivery of the same work finds it RUNNING and leaves; a redelivery of the *same* message
(its pool process died: late ack + reject on worker lost) may take it over; the attempt counter
is committed at claim time, and past the poison limit the row is POISONED instead of run. The
claim names this worker process and a new lease (gascap/worker_heartbeat.py): when the whole
worker dies, the sweeper hands the row back within two sweep periods, and every outcome write is
conditional on the lease, so a run taken for dead never overwrites the run that took over.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone

from customers import services as customer_services
from gascap.pge.errors import (
    PgeAuthError,
    PgeConfigurationError,
    PgeError,
    PgePermanentError,
    PgeTransientError,
    PgeUrlRefused,
)
from gascap.pge.gate import BudgetExhausted, Priority, call_priority
from gascap.pge.safexml import XmlRejected
from gascap.pge_budget.pacing import RateLimitTimeout
from gascap.pge_settings import pge_client
from ingest import publish, readings
from ingest.claims import (
    LeaseLost,
    RunResult,
    error_excerpt,
    row_budget_wait,
    row_claim,
    row_fail,
    row_poison_check,
    row_retry,
    row_save,
)
from ingest.fetch_rows import url_sha256
from ingest.models import Fetch, FetchAttempt
from ingest.pge_resources import (
    STARTS_REQUEST_REFUSAL,
    ResourceRefused,
    fetch_kind,
    resource_parse,
    url_check,
)
from ingest.readings import ImportResult
from ingest.usage_point_binding import (
    DocumentRefused,
    UsagePointBinding,
    bulk_binding,
    subscription_binding,
)
from ops.log_context import log_context_set

logger = logging.getLogger(__name__)


class _Failed(Exception):
    """A permanent outcome: stored on the row, never retried."""

    def __init__(self, reason: str, message: str, *, status: str = Fetch.Status.FAILED) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def _token_check(fetch: Fetch) -> None:
    """The fetch names whose token it needs — never a default one (threat T3): its
    subscription's, or the client token for Bulk and ReadingTypes."""
    if not fetch.subscription_id and fetch.kind not in (Fetch.Kind.BULK, Fetch.Kind.READING_TYPE):
        raise _Failed("unsupported_resource", f"No token rule for a {fetch.kind} resource")


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


def _get_with_auth_retry(fetch: Fetch, *, url: str, now: datetime):  # type: ignore[no-untyped-def]
    """GET `url` by customers' rule for a refused token (`pge_call_authorized`: refresh once,
    retry once, report); each HTTP call is one attempt row."""
    _token_check(fetch)
    try:
        return customer_services.pge_call_authorized(
            lambda token: _http_get(fetch, url=url, token=token),
            subscription_id=fetch.subscription_id,
            url=url,
            now=now,
        )
    except customer_services.AuthorizationUnavailable as exc:
        reason = str(getattr(exc, "reason", "") or "unknown_subscription")
        raise _Failed(
            "unknown_subscription" if "unknown" in reason else f"authorization_{reason}"[:64],
            f"No usable authorization for subscription {fetch.subscription_id} ({reason})",
        ) from None
    except customer_services.CallForbidden as refused:
        raise _Failed(refused.reason, error_excerpt(refused.error)) from None
    except PgeAuthError as exc:
        if exc.invalid_grant:
            raise _Failed("invalid_grant", error_excerpt(exc)) from None
        raise


def _resource_verdict(fetch: Fetch, *, now: datetime) -> RunResult | None:
    """The row's URL checked again, before any token is chosen (the row may have been made
    before today's rules, edited or replayed): refused outside the grammar or when the row's
    subscription is not the one the URL names (threat T3); skipped when a GET would start a
    new request at PG&E instead of downloading notified data (docs/pge-protocol.md)."""
    try:
        url_check(fetch.url)
        resource = resource_parse(fetch.url)
    except (PgeUrlRefused, ResourceRefused) as exc:
        reason = getattr(exc, "reason", "") or "url_refused"
        return _fail(
            fetch,
            now=now,
            reason=reason,
            error=error_excerpt(exc),
            status=Fetch.Status.REFUSED,
            with_traceback=False,
        )
    if resource.starts_request:
        return _fail(
            fetch,
            now=now,
            reason="no_correlation",
            status=Fetch.Status.SKIPPED,
            error=STARTS_REQUEST_REFUSAL,
            with_traceback=False,
        )
    if resource.subscription_id != fetch.subscription_id or fetch_kind(resource) != fetch.kind:
        return _fail(
            fetch,
            now=now,
            reason="url_mismatch",
            status=Fetch.Status.REFUSED,
            error="The row's kind or subscription is not what its URL names",
            with_traceback=False,
        )
    if fetch.kind == Fetch.Kind.AUTHORIZATION:
        return _fail(
            fetch,
            now=now,
            reason="unsupported_resource",
            status=Fetch.Status.REFUSED,
            error="An Authorization notice is polled, not fetched",
            with_traceback=False,
        )
    return None


def _service_kinds_record(result: ImportResult) -> None:
    """Tell customers the service kind (electric/gas) of the usage points the import stored,
    per authorization: PG&E's Authorization resource does not say it, only the data's
    ServiceCategory does."""
    by_authorization: dict[int, dict[str, int]] = {}
    for stored in result.usage_points_stored:
        if stored.authorization_id is not None and stored.service_kind is not None:
            kinds = by_authorization.setdefault(stored.authorization_id, {})
            kinds[stored.usage_point_id] = stored.service_kind
    # All of a Bulk document's authorizations at once (500 of them: docs/scale.md).
    customer_services.subscription_usage_points_record_kinds_many(kinds=by_authorization)


def _binding(fetch: Fetch) -> UsagePointBinding:
    """What the document may write, from the fetch (docs/espi.md, "Which usage points a
    document may write"): its subscription's usage points, else (Bulk) ACTIVE ones only."""
    if fetch.subscription_id:
        return subscription_binding(subscription_id=fetch.subscription_id)
    return bulk_binding()


def _import(fetch: Fetch, *, now: datetime) -> tuple[int, ImportResult, list[str]]:
    document = _get_with_auth_retry(fetch, url=fetch.url, now=now)
    return _document_ingest(fetch, document, now=now)


def _document_ingest(  # type: ignore[no-untyped-def]
    fetch: Fetch, document, *, now: datetime
) -> tuple[int, ImportResult, list[str]]:
    """Import one answer into the readings (closing it), then fetch the ReadingTypes it lacked.
    The usage points it may write are those of the fetch's binding (`_binding`)."""
    size = document.size or 0
    try:
        if document.status not in (200, 204):
            # A 202 here would mean PG&E took the GET for a new request; other 2xx are not
            # documented for a data download either (docs/pge-protocol.md, "Data APIs").
            raise _Failed(
                "unexpected_status",
                f"PG&E answered {document.status} to a data download (expected 200 or 204)",
            )
        if document.status == 204 or not size:
            # Since 2023 PG&E answers 204 when the range holds no data.
            return size, ImportResult(), []
        with document.open() as source:
            result = readings.document_import(
                source=source, source_label=f"fetch {fetch.pk}", now=now, binding=_binding(fetch)
            )
    except DocumentRefused as refused:
        raise _Failed(refused.reason, str(refused), status=Fetch.Status.REFUSED) from None
    finally:
        document.close()
    _service_kinds_record(result)
    problems: list[str] = []
    for href in result.missing_reading_types:
        # A MeterReading without its ReadingType leaves units unknown: fetch it, never guess.
        try:
            url_check(href)
            if resource_parse(href).kind != "READING_TYPE":
                raise ResourceRefused("unsupported_resource", "the link is not a ReadingType")
        except (PgeUrlRefused, ResourceRefused) as exc:
            problems.append(f"ReadingType refused: {error_excerpt(exc)}")
            continue
        extra = _get_with_auth_retry(fetch, url=href, now=now)
        try:
            with extra.open() as source:
                readings.reading_type_attach(href=href, source=source, now=now)
        finally:
            extra.close()
    return size, result, problems


def fetch_run(*, fetch_id: int, now: datetime, task_id: str | None = None) -> RunResult:
    """Run fetch `fetch_id` once (see the module docstring). Returns what happened."""
    fetch = row_claim(Fetch, pk=fetch_id, now=now, task_id=task_id)
    if fetch is None:
        current = Fetch.objects.filter(pk=fetch_id).values_list("status", flat=True)
        return RunResult(status=current[0] if current else "MISSING", reason="not_claimed")
    log_context_set(fetch_id=fetch.pk, subscription_id=fetch.subscription_id)
    try:
        return _run_claimed(fetch, now=now)
    except LeaseLost:
        # Taken for dead (silent past GASCAP_WORKER_HEARTBEAT_STALE) and taken over: the run
        # holding the row now records the outcome; the readings import is idempotent.
        logger.warning("fetch %s: lease lost to a take-over; outcome not recorded", fetch.pk)
        return RunResult(status="LEASE_LOST", reason="lease_lost")


def _run_claimed(fetch: Fetch, *, now: datetime) -> RunResult:
    if row_poison_check(fetch, now=now):
        return RunResult(status=Fetch.Status.POISONED, reason="poison_limit")
    verdict = _resource_verdict(fetch, now=now)
    if verdict is not None:
        return verdict
    try:
        # Notified data outranks gap fills and other fetches we made up ourselves.
        with call_priority(Priority.NOTIFIED if fetch.notification_id else Priority.SCHEDULED):
            size, result, problems = _import(fetch, now=now)
    except BudgetExhausted as exc:
        return row_budget_wait(fetch, now=now, exc=exc, requeue=_requeue, work="fetch")
    except _Failed as failed:
        return _fail(fetch, now=now, reason=failed.reason, error=str(failed), status=failed.status)
    except (PgeTransientError, RateLimitTimeout, DatabaseError) as exc:
        return row_retry(
            fetch,
            exc=exc,
            requeue=_requeue,
            exhausted_error=error_excerpt(exc),
            with_traceback=True,
        )
    except PgeConfigurationError as exc:
        return _fail(fetch, now=now, reason="configuration", error=error_excerpt(exc))
    except PgePermanentError as exc:
        return _fail(fetch, now=now, reason=exc.code[:64], error=error_excerpt(exc))
    except PgeAuthError as exc:
        return _fail(fetch, now=now, reason="auth", error=error_excerpt(exc))
    except XmlRejected as exc:
        return _fail(
            fetch, now=now, reason="parse_rejected", error=error_excerpt(exc), with_traceback=True
        )
    except Exception as exc:
        logger.exception("fetch %s failed unexpectedly", fetch.pk)
        return _fail(
            fetch,
            now=now,
            reason=f"error_{type(exc).__name__}"[:64],
            error=error_excerpt(exc),
            with_traceback=True,
        )
    _save_ingested(
        fetch, size=size, result=result, problems=problems, traceback="", runner_task_id=""
    )
    logger.info("fetch %s ingested: %s", fetch.pk, result.summary_line())
    return RunResult(status=Fetch.Status.INGESTED)


def _save_ingested(
    fetch: Fetch, *, size: int, result: ImportResult, problems: list[str], **extra: object
) -> None:
    """The row of a document imported whole: its byte count and what the import did."""
    row_save(
        fetch,
        status=Fetch.Status.INGESTED,
        finished_at=timezone.now(),
        bytes_received=size,
        readings_new=result.readings_new,
        readings_updated=result.readings_updated,
        readings_unchanged=result.readings_unchanged,
        readings_stale=result.readings_stale,
        usage_points_skipped=result.usage_points_skipped,
        reason="incomplete_units" if problems else "",
        error="\n".join(problems)[:2000],
        **extra,
    )


def _fail(
    fetch: Fetch,
    *,
    now: datetime,
    reason: str,
    error: str,
    status: str = Fetch.Status.FAILED,
    with_traceback: bool = True,
) -> RunResult:
    return row_fail(fetch, status=status, reason=reason, error=error, with_traceback=with_traceback)


def _requeue(fetch_id: int, delay: float) -> bool:
    return publish.fetch_enqueue(fetch_id=fetch_id, countdown=delay)


def fetch_record_answer(  # type: ignore[no-untyped-def]
    *, kind: str, subscription_id: str, answer, now: datetime, data_request_id: int | None = None
) -> Fetch:
    """Record a data request's answer that was not 202 (docs/pge-protocol.md, "Data APIs") as a
    fetch row: a 200 carrying the data is imported from the answer (no second GET), any other
    2xx is FAILED `unexpected_status`. The row names the request URL, which has no
    correlationID: replayed, it is skipped, never sent again (it would start a new request)."""
    document = answer.document
    fetch = Fetch.objects.create(
        url=answer.url,
        url_sha256=url_sha256(answer.url),
        kind=kind,
        subscription_id=subscription_id,
        data_request_id=data_request_id,
        status=Fetch.Status.RUNNING,
        attempts=1,
        created_at=now,
        started_at=now,
    )
    FetchAttempt.objects.create(
        fetch=fetch,
        url=answer.url,
        started_at=now,
        duration_ms=(document.elapsed * 1000) if document is not None else 0,
        status_code=answer.status,
        bytes_received=(document.size or 0) if document is not None else 0,
        outcome=FetchAttempt.Outcome.OK if document is not None else FetchAttempt.Outcome.PERMANENT,
        error_code="" if document is not None else "unexpected_status",
    )
    if document is None:
        _fail(
            fetch,
            now=now,
            reason="unexpected_status",
            error=f"PG&E answered {answer.status} to an asynchronous request (expected 202): "
            "no notification will follow",
            with_traceback=False,
        )
        return fetch
    try:
        size, result, problems = _document_ingest(fetch, document, now=now)
    except _Failed as failed:
        _fail(fetch, now=now, reason=failed.reason, error=str(failed), status=failed.status)
    except XmlRejected as exc:
        _fail(fetch, now=now, reason="parse_rejected", error=error_excerpt(exc))
    except Exception as exc:  # recorded on the row: the answer cannot be fetched again
        logger.exception("fetch %s: importing a data request's answer failed", fetch.pk)
        _fail(fetch, now=now, reason=f"error_{type(exc).__name__}"[:64], error=error_excerpt(exc))
    else:
        _save_ingested(fetch, size=size, result=result, problems=problems)
    fetch.refresh_from_db()
    return fetch
