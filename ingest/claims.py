"""Running a retried row once (a `Fetch`, a `DataRequest`): the claim, the outcome writes under
the claim's lease, the hard-time-limit lease and the retry delay (docs/reliability.md R5).

Both models carry the same run fields (`status` PENDING/RUNNING/RETRYING, `attempts`,
`started_at`, `next_attempt_at`, `runner_task_id`, and `RunnerLeased`'s runner and lease), so
the rules are written here once:
- the claim is one conditional UPDATE naming this worker process and a new lease, with the
  attempt counter committed at claim time (a run killed mid-way still counts towards the
  poison limit); a second delivery of the same work finds the row RUNNING and leaves, a
  redelivery of the *same* message (its pool process died) may take it over;
- every outcome write is conditional on the lease (`row_save`), so a run taken for dead never
  overwrites the run that took over (gascap/worker_heartbeat.py);
- a RUNNING row older than the hard time limit is abandoned, whoever holds it (`lease_expiry`);
- a row started more than GASCAP_INGEST_POISON_LIMIT times without an outcome is POISONED
  (`row_poison_check`); a transient failure is RETRYING with backoff until the limit
  (`row_retry`); a refusal by the PG&E call budget is RETRYING `budget_wait`, not an attempt
  (`row_budget_wait`). Each re-queue is published after the commit of the row's new state.
"""

from __future__ import annotations

import logging
import traceback as traceback_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F, Model, Q
from django.utils import timezone

from gascap.pge.gate import BudgetExhausted
from gascap.pge_budget.budget import budget_wait_countdown, budget_wait_record
from gascap.worker_heartbeat import lease_held, lease_new, this_runner
from ingest.backoff import backoff_delay

logger = logging.getLogger(__name__)

# Publishes run `pk` again in `countdown` seconds (after the commit of its new state).
Requeue = Callable[[int, float], object]

RowT = TypeVar("RowT", bound=Model)


@dataclass
class RunResult:
    """What one run of a row did: the status it left, why, and (RETRYING) when it runs again."""

    status: str
    reason: str = ""
    retry_in: float | None = None


class LeaseLost(Exception):
    """The row was taken over (this run was taken for dead): its outcome is not ours to write."""


def lease_expiry() -> timedelta:
    """No run can legitimately last beyond the hard time limit: past it a RUNNING row is
    abandoned, whoever holds it (the backstop for a run that ended without an outcome)."""
    return timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT) + 60)


def row_abandoned(status: Any, *, now: datetime) -> Q:
    """The RUNNING rows past the lease (`status`: the model's Status choices): a run may claim
    one again and the sweeper re-queues it, whoever holds it."""
    return Q(status=status.RUNNING, started_at__lt=now - lease_expiry())


def row_claim(model: type[RowT], *, pk: int, now: datetime, task_id: str | None) -> RowT | None:
    """Take row `pk` of `model` for this run with one conditional UPDATE, or None when another
    run holds it (or it is finished). A RUNNING row whose runner died is handed back by the
    sweeper (RETRYING) before it can be claimed again."""
    status = model.Status  # type: ignore[attr-defined]
    runnable = Q(status__in=[status.PENDING, status.RETRYING]) | row_abandoned(status, now=now)
    if task_id:
        runnable |= Q(status=status.RUNNING, runner_task_id=task_id)
    claimed = model._default_manager.filter(runnable, pk=pk).update(  # type: ignore[attr-defined]
        status=status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        runner_task_id=task_id or "",
        runner=this_runner(),
        lease=lease_new(),
        next_attempt_at=None,
    )
    return model._default_manager.get(pk=pk) if claimed else None  # type: ignore[attr-defined]


def row_run(
    model: type[RowT],
    *,
    pk: int,
    now: datetime,
    task_id: str | None,
    run: Callable[[RowT], RunResult],
) -> RunResult:
    """Claim row `pk` of `model` (`row_claim`) and `run` it once. A row another run holds (or
    a finished one) is left as it is: `not_claimed` with its status. A run taken for dead and
    taken over (`LeaseLost`) records nothing: the run holding the row now writes the outcome."""
    row = row_claim(model, pk=pk, now=now, task_id=task_id)
    if row is None:
        manager = model._default_manager  # type: ignore[attr-defined]
        current = manager.filter(pk=pk).values_list("status", flat=True)
        return RunResult(status=current[0] if current else "MISSING", reason="not_claimed")
    try:
        return run(row)
    except LeaseLost:
        name = model._meta.verbose_name
        logger.warning("%s %s: lease lost to a take-over; outcome not recorded", name, pk)
        return RunResult(status="LEASE_LOST", reason="lease_lost")


def row_save(row: Any, **fields: object) -> None:
    """Write fields of a claimed row, only while this run's lease holds it (`LeaseLost`
    otherwise). The runner stays on a finished row: the operator sees which worker process
    ran it last."""
    if not lease_held(type(row)._default_manager, pk=row.pk, lease=row.lease).update(**fields):
        raise LeaseLost(row.pk)
    for name, value in fields.items():
        setattr(row, name, value)


def retry_delay(*, attempts: int, exc: BaseException) -> float:
    """Seconds before the next run of a row whose `attempts`-th run failed transiently:
    capped exponential backoff with full jitter, PG&E's Retry-After as a floor."""
    return backoff_delay(
        retry=max(0, attempts - 1),
        base=float(settings.GASCAP_INGEST_BACKOFF_BASE),
        cap=float(settings.GASCAP_INGEST_BACKOFF_CAP),
        retry_after=getattr(exc, "retry_after", None),
    )


def error_excerpt(exc: BaseException) -> str:
    """The part of an error message a row keeps (its `error`, an attempt's excerpt)."""
    return str(exc)[:500]


def row_fail(
    row: Any, *, reason: str, error: str, status: str | None = None, with_traceback: bool = False
) -> RunResult:
    """Write the claimed row's final failure (FAILED unless `status` says REFUSED, SKIPPED...)
    and log it once; `with_traceback` keeps the exception being handled on the row."""
    status = status or type(row).Status.FAILED
    row_save(
        row,
        status=status,
        reason=reason,
        error=error,
        finished_at=timezone.now(),
        traceback=traceback_module.format_exc()[-8000:] if with_traceback else "",
        runner_task_id="",
    )
    logger.warning("%s %s %s: %s", row._meta.verbose_name, row.pk, status.lower(), reason)
    return RunResult(status=status, reason=reason)


def _requeue_on_commit(row: Any, requeue: Requeue, delay: float) -> None:
    pk = row.pk
    transaction.on_commit(lambda: requeue(pk, delay))


def row_poison_check(row: Any, *, now: datetime) -> bool:
    """The claimed row has been started more than GASCAP_INGEST_POISON_LIMIT times without
    ever recording an outcome (a crash or a kill each time): write it POISONED and say so."""
    if row.attempts <= int(settings.GASCAP_INGEST_POISON_LIMIT):
        return False
    row_save(
        row,
        status=type(row).Status.POISONED,
        reason="poison_limit",
        finished_at=now,
        error=f"started {row.attempts - 1} times without finishing",
        runner_task_id="",
    )
    logger.error("%s poisoned after %s runs", row, row.attempts - 1)
    return True


def row_retry(
    row: Any,
    *,
    exc: BaseException,
    requeue: Requeue,
    exhausted_error: str,
    with_traceback: bool = False,
) -> RunResult:
    """A transient failure of the claimed row's run: RETRYING with backoff and re-queued; once
    its attempts reached GASCAP_INGEST_POISON_LIMIT, FAILED `retries_exhausted` with
    `exhausted_error` (`row_fail`)."""
    reason = str(getattr(exc, "code", "") or type(exc).__name__)[:64]
    if row.attempts >= int(settings.GASCAP_INGEST_POISON_LIMIT):
        return row_fail(
            row,
            reason="retries_exhausted",
            error=exhausted_error,
            with_traceback=with_traceback,
        )
    delay = retry_delay(attempts=row.attempts, exc=exc)
    with transaction.atomic():
        row_save(
            row,
            status=type(row).Status.RETRYING,
            reason=reason,
            error=error_excerpt(exc),
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            runner_task_id="",
        )
        _requeue_on_commit(row, requeue, delay)
    logger.info("%s: transient %s, retry %s in %.1fs", row, reason, row.attempts, delay)
    return RunResult(status=type(row).Status.RETRYING, reason=reason, retry_in=delay)


def row_budget_wait(
    row: Any, *, now: datetime, exc: BudgetExhausted, requeue: Requeue, work: str
) -> RunResult:
    """The PG&E call budget refused the run: RETRYING `budget_wait` until its window opens
    (`next_attempt_at`), re-queued for then. Not a failure — the run does not count towards
    the poison limit. Counted as a wait of `work` (`manage.py pge_budget`)."""
    delay = budget_wait_countdown(exc=exc, now=now)
    with transaction.atomic():
        row_save(
            row,
            status=type(row).Status.RETRYING,
            reason="budget_wait",
            error=error_excerpt(exc),
            attempts=max(0, row.attempts - 1),
            next_attempt_at=exc.retry_at,
            runner_task_id="",
        )
        _requeue_on_commit(row, requeue, delay)
    budget_wait_record(work=work, exc=exc, now=now)
    return RunResult(status=type(row).Status.RETRYING, reason="budget_wait", retry_in=delay)
