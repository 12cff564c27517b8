"""Running one fetch: claim the row, pick the token the URL names, GET it from PG&E (one
attempt row per HTTP call), import the document, fetch the ReadingTypes it lacked, and record
the outcome — retry transient failures with backoff, fail permanent ones once. The GET is
`ingest.fetch_calls`, the import of what it brought `ingest.fetch_documents`; this module
checks the row's URL again and decides the outcome.

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
from datetime import datetime

from django.db import DatabaseError

from gascap.pge.errors import (
    PgeAuthError,
    PgeConfigurationError,
    PgePermanentError,
    PgeTransientError,
    PgeUrlRefused,
)
from gascap.pge.gate import BudgetExhausted, Priority, call_priority
from gascap.pge.safexml import XmlRejected
from gascap.pge_budget.pacing import RateLimitTimeout
from ingest import publish
from ingest.claims import (
    RunResult,
    error_excerpt,
    row_budget_wait,
    row_fail,
    row_poison_check,
    row_retry,
    row_run,
)
from ingest.fetch_calls import FetchFailed, fetch_get
from ingest.fetch_documents import document_ingest, fetch_save_ingested
from ingest.models import Fetch
from ingest.pge_resources import (
    STARTS_REQUEST_REFUSAL,
    ResourceRefused,
    fetch_kind,
    resource_parse,
    url_check,
)
from ingest.readings import ImportResult
from ops.log_context import log_context_set

logger = logging.getLogger(__name__)


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


def _import(fetch: Fetch, *, now: datetime) -> tuple[int, ImportResult, list[str]]:
    document = fetch_get(fetch, url=fetch.url, now=now)
    return document_ingest(fetch, document, now=now)


def fetch_run(*, fetch_id: int, now: datetime, task_id: str | None = None) -> RunResult:
    """Run fetch `fetch_id` once (see the module docstring). Returns what happened. Taken for
    dead (silent past GASCAP_WORKER_HEARTBEAT_STALE) and taken over, the run records nothing:
    the run holding the row records the outcome, and the readings import is idempotent."""
    return row_run(
        Fetch, pk=fetch_id, now=now, task_id=task_id, run=lambda f: _run_claimed(f, now=now)
    )


def _run_claimed(fetch: Fetch, *, now: datetime) -> RunResult:
    log_context_set(fetch_id=fetch.pk, subscription_id=fetch.subscription_id)
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
    except FetchFailed as failed:
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
    fetch_save_ingested(
        fetch, size=size, result=result, problems=problems, traceback="", runner_task_id=""
    )
    logger.info("fetch %s ingested: %s", fetch.pk, result.summary_line())
    return RunResult(status=Fetch.Status.INGESTED)


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
