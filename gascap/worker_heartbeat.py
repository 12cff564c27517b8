"""Runner liveness: which worker process holds a row, and whether that process is alive
(docs/reliability.md R5; issue 17).

The broker alone cannot say that a worker died: when a whole worker is killed (OOM, container
restart, `kill -9` of the main process and its pool), its unacked message comes back only
after Redis's visibility timeout (2 h), and a RUNNING row only looked abandoned after the hard
time limit. So each process that runs tasks keeps a heartbeat row fresh from a daemon thread
(every GASCAP_WORKER_HEARTBEAT_INTERVAL s, default 5), and a claim records the claiming
process (`RunnerLeased.runner`) and a fresh lease token. The sweeper (every
GASCAP_INGEST_SWEEP_PERIOD s, default 120) hands back every RUNNING row whose runner's
heartbeat is older than GASCAP_WORKER_HEARTBEAT_STALE (default 30 s): a dead runner's row is
re-queued within STALE + PERIOD < two sweep periods, while a slow runner that still beats
keeps its row however long it takes (up to the hard time limit, which kills it).

Exactly once: the hand-back is one conditional UPDATE on (row, runner, lease), so a row its
runner finished or released meanwhile is left alone; the next claim writes a new lease, and
the previous holder's outcome writes are conditional on its own lease (`lease_held`), so a
runner wrongly taken for dead (frozen past the threshold) cannot overwrite the new run.

Generic: any model inheriting `gascap.models.RunnerLeased` uses `lease_new`, `this_runner`,
`orphans_release`. Imports nothing from customers or ingest.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, reset_queries
from django.db.models import DateTimeField, ExpressionWrapper, QuerySet, Value
from django.db.models.functions import Now

from gascap.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

RELEASE_BATCH = 500

_lock = threading.Lock()
_runner = ""  # set once this process's first beat is stored
_stop: threading.Event | None = None
_thread: threading.Thread | None = None


def _forget_after_fork() -> None:
    # A forked child is another process: it must never claim under its parent's identity.
    global _runner, _stop, _thread
    _runner, _stop, _thread = "", None, None


os.register_at_fork(after_in_child=_forget_after_fork)


def this_runner() -> str:
    """This process's runner id, or "" when it keeps no heartbeat (web, commands, tests, or a
    worker whose first beat could not be stored yet): rows it claims then fall back to the
    hard-time-limit lease."""
    return _runner


def lease_new() -> str:
    """A fresh lease token for one claim."""
    return secrets.token_hex(16)


def _db_now_minus(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(
        Now() - Value(timedelta(seconds=seconds)), output_field=DateTimeField()
    )


def runner_beat(*, runner: str, hostname: str, pid: int) -> None:
    """Store one heartbeat of `runner` (database clock)."""
    if not WorkerHeartbeat.objects.filter(runner=runner).update(beat_at=Now()):
        WorkerHeartbeat.objects.create(
            runner=runner, hostname=hostname[:255], pid=pid, started_at=Now(), beat_at=Now()
        )


def runners_alive() -> QuerySet[WorkerHeartbeat]:
    """Heartbeats fresher than GASCAP_WORKER_HEARTBEAT_STALE seconds (database clock)."""
    stale = float(settings.GASCAP_WORKER_HEARTBEAT_STALE)
    return WorkerHeartbeat.objects.filter(beat_at__gte=_db_now_minus(stale))


def orphans(queryset: QuerySet) -> QuerySet:
    """The rows of `queryset` (already narrowed to the running status) held by a runner whose
    heartbeat is stale or gone. Rows claimed outside a worker (no runner) are not included."""
    return queryset.exclude(runner="").exclude(runner__in=runners_alive().values("runner"))


def orphans_release(*, queryset: QuerySet, fields: dict[str, object]) -> list[int]:
    """Hand back the orphans of `queryset`: each row gets `fields` (its new status, ...) and
    loses its runner and lease, by one UPDATE conditional on the runner and lease read, so a row
    finished, released or re-claimed meanwhile is left alone. Returns the ids handed back."""
    released: list[int] = []
    candidates = orphans(queryset).values_list("pk", "runner", "lease")[:RELEASE_BATCH]
    for pk, runner, lease in candidates:
        if queryset.filter(pk=pk, runner=runner, lease=lease).update(runner="", lease="", **fields):
            logger.warning(
                "%s %s: runner %s stopped beating; taken over",
                queryset.model._meta.label,
                pk,
                runner,
            )
            released.append(pk)
    return released


def lease_held(queryset: QuerySet, *, pk: int, lease: str) -> QuerySet:
    """`queryset` narrowed to row `pk` while the claim with `lease` still holds it: update
    through this and check the count to write an outcome only if nobody took the row over."""
    return queryset.filter(pk=pk, lease=lease)


def heartbeats_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete heartbeats of processes gone for `older_than` (they hold nothing any more)."""
    deleted, _ = WorkerHeartbeat.objects.filter(
        beat_at__lt=_db_now_minus(older_than.total_seconds())
    ).delete()
    return deleted


def _beat_once(runner: str, hostname: str) -> bool:
    global _runner
    try:
        runner_beat(runner=runner, hostname=hostname, pid=os.getpid())
    except DatabaseError as exc:
        # The database is down or restarting: drop the broken connection and beat again next
        # time. Meanwhile this runner may look dead; its lease protects what it holds.
        logger.warning("worker heartbeat not stored: %s", exc)
        connection.close()
        return False
    _runner = runner
    return True


def _beat_loop(
    runner: str, hostname: str, stop: threading.Event, first: threading.Event, interval: float
) -> None:
    # Every beat, the first included, from this thread and its own database connection: the
    # thread that starts the heartbeat may hold a connection inherited across a fork. The
    # connection is kept between beats (one per task-running process, not a new PostgreSQL
    # backend every few seconds) and dropped only when a beat fails.
    while True:
        try:
            _beat_once(runner, hostname)
        except Exception:  # never let the heartbeat thread die silently
            logger.exception("worker heartbeat failed")
        # With DEBUG on, Django logs each beat's SQL on this thread's connection and nothing
        # else ever empties that log (gascap/celery.py, `_queries_log_clear`).
        reset_queries()
        first.set()
        if stop.wait(interval):
            break
    connection.close()


def heartbeat_start(*, hostname: str) -> str:
    """Start this process's heartbeat (idempotent): a daemon thread beating now and every
    interval. Waits (a few seconds at most) for the first beat, so the rows this process claims
    from then on name it. Returns the runner id."""
    global _stop, _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return _runner
        runner = f"{hostname[:60]}/{os.getpid()}/{secrets.token_hex(4)}"
        interval = float(settings.GASCAP_WORKER_HEARTBEAT_INTERVAL)
        first = threading.Event()
        _stop = threading.Event()
        _thread = threading.Thread(
            target=_beat_loop,
            args=(runner, hostname, _stop, first, interval),
            name="gascap-worker-heartbeat",
            daemon=True,
        )
        _thread.start()
        first.wait(timeout=max(interval, 5.0))
        logger.info("worker heartbeat started: %s (stored: %s)", runner, _runner == runner)
        return runner


def heartbeat_stop() -> None:
    """Stop the heartbeat and delete its row (a clean exit: this process holds nothing)."""
    global _runner, _stop, _thread
    with _lock:
        stop, thread = _stop, _thread
        if stop is None:
            return
        stop.set()
        if thread is not None:
            thread.join(timeout=10)  # first: a beat in progress would set the runner again
        runner = _runner
        _runner, _stop, _thread = "", None, None
    if runner:
        try:
            WorkerHeartbeat.objects.filter(runner=runner).delete()
        except DatabaseError:
            pass  # stale soon anyway
