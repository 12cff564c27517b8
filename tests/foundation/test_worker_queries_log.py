"""A long-lived worker with DEBUG on does not keep every task's SQL (docs/scale.md, "Worker
memory"): Django's `queries_log` is emptied when a task starts (gascap/celery.py) and after each
heartbeat (gascap/worker_heartbeat.py). Before, a worker of the pipeline bench grew by ~0.8 MB
per Bulk document (~65 statements) until the log's 9,000-entry cap.

The task runs through Celery's own tracer (`build_tracer`, what the solo pool and each prefork
child call for a message), so the task signals fire as in a worker; the statements executed
are counted apart from the log (`execute_wrapper`), so the log's being empty is not for want
of queries."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from celery.app.trace import build_tracer
from django.db import connection

from gascap import worker_heartbeat
from gascap.celery import app
from ingest.tasks import fetch_run_task

RUNS = 20


class _Counter:
    def __init__(self) -> None:
        self.statements = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.statements += 1
        return execute(sql, params, many, context)


@pytest.fixture
def debug_cursor():  # type: ignore[no-untyped-def]
    """Queries logged as with DEBUG on (settings.local), for this test's connection."""
    connection.force_debug_cursor = True
    connection.queries_log.clear()
    yield
    connection.force_debug_cursor = False
    connection.queries_log.clear()


@pytest.mark.django_db
def test_a_task_run_by_a_worker_leaves_only_its_own_queries_in_the_log(debug_cursor) -> None:
    task = fetch_run_task
    trace = build_tracer(task.name, task, app=app, eager=False, propagate=True)
    counter = _Counter()
    logged = []
    with connection.execute_wrapper(counter):
        for _ in range(RUNS):
            task_id = str(uuid.uuid4())
            # A fetch id that does not exist: the claim's queries, nothing else.
            outcome: Any = trace(task_id, [987654321], {}, {"id": task_id})
            assert outcome.retval == {"status": "MISSING", "reason": "not_claimed"}
            logged.append(len(connection.queries_log))
    per_task = counter.statements // RUNS
    assert per_task >= 1
    # The log holds the last task's queries, whatever ran before (it grew by `per_task` a run).
    assert logged == [per_task] * RUNS


@pytest.mark.django_db
def test_a_task_run_eagerly_leaves_the_callers_log_alone(debug_cursor) -> None:
    """Inside a request or a test (assertNumQueries reads the same log), an eager task is part
    of the caller's work."""
    task = fetch_run_task
    task.apply(args=[987654321])
    after_one = len(connection.queries_log)
    task.apply(args=[987654321])
    assert after_one >= 1
    assert len(connection.queries_log) == 2 * after_one


class _StopAfter(threading.Event):
    """The heartbeat loop's stop event, set after `beats` beats without waiting."""

    def __init__(self, beats: int) -> None:
        super().__init__()
        self.left = beats

    def wait(self, timeout: float | None = None) -> bool:
        self.left -= 1
        return self.left <= 0


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_keeps_no_log_of_its_beats() -> None:
    seen: dict[str, int] = {}

    def beat_thread() -> None:
        # The thread's own connection, as in a worker (connections are per thread).
        connection.force_debug_cursor = True
        counter = _Counter()
        with connection.execute_wrapper(counter):
            worker_heartbeat._beat_loop(
                "unit/1/queries", "celery@unit", _StopAfter(RUNS), threading.Event(), 0.0
            )
        seen["executed"] = counter.statements
        seen["logged"] = len(connection.queries_log)
        connection.close()

    thread = threading.Thread(target=beat_thread)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert seen["executed"] >= RUNS
    assert seen["logged"] == 0
