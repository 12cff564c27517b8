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
- a RUNNING row older than the hard time limit is abandoned, whoever holds it (`lease_expiry`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import F, Model, Q

from gascap.worker_heartbeat import lease_held, lease_new, this_runner
from ingest.backoff import backoff_delay

RowT = TypeVar("RowT", bound=Model)


class LeaseLost(Exception):
    """The row was taken over (this run was taken for dead): its outcome is not ours to write."""


def lease_expiry() -> timedelta:
    """No run can legitimately last beyond the hard time limit: past it a RUNNING row is
    abandoned, whoever holds it (the backstop for a run that ended without an outcome)."""
    return timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT) + 60)


def row_claim(model: type[RowT], *, pk: int, now: datetime, task_id: str | None) -> RowT | None:
    """Take row `pk` of `model` for this run with one conditional UPDATE, or None when another
    run holds it (or it is finished). A RUNNING row whose runner died is handed back by the
    sweeper (RETRYING) before it can be claimed again."""
    status = model.Status  # type: ignore[attr-defined]
    runnable = Q(status__in=[status.PENDING, status.RETRYING]) | Q(
        status=status.RUNNING, started_at__lt=now - lease_expiry()
    )
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
