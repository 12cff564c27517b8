"""Issue 12: a data request whose whole worker died is taken over by the sweeper, like a fetch.

Two prefork workers (as deployed) with short heartbeat settings consume `pge_fetch`; a consent's
`DataRequest` row is made and published by name (`ingest.data_request_run`). The sandbox holds
the asynchronous Subscription request (`slow` fault) so it is in flight when the worker that
claimed the row is SIGKILLed whole. Its message stays unacked in Redis and its row RUNNING; the
sweeper, run every SWEEP_PERIOD as beat would, sees the runner's heartbeat go stale, hands the
row back (RETRYING `runner_lost`) and re-queues it; the surviving worker asks PG&E again and the
row ends REQUESTED with exactly two runs and one window answered (202).
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from django.utils import timezone

from ingest.data_request_runs import subscription_data_request_open
from ingest.models import DataRequest
from tests.reliability.conftest import HEARTBEAT_STALE, SWEEP_PERIOD, Sweeper, heartbeat_env
from tests.support import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.timeout(150)
def test_whole_worker_killed_mid_data_request_is_taken_over(stack, redis_db, procs):
    from customers.models import Authorization
    from sandbox.faults import Fault

    env = {**stack.env, **heartbeat_env()}
    workers = procs.worker_pair(env)
    stack.sandbox.state.fault_add(
        Fault(kind="slow", subscription_id=stack.sid, times=1, seconds=15.0)
    )
    authorization = Authorization.objects.get(subscription_id=stack.sid)
    row, created = subscription_data_request_open(
        authorization_id=authorization.pk, origin=DataRequest.Origin.CONSENT, now=timezone.now()
    )
    assert created and row is not None  # committed and published (autocommit: at once)

    # In flight: the sandbox has taken the fault, i.e. it is holding the worker's request.
    wait_for(lambda: not stack.sandbox.state.faults_list(), timeout=30, what="the request")
    row.refresh_from_db()
    assert row.status == DataRequest.Status.RUNNING and row.attempts == 1
    assert row.runner, "the claim names its worker process"
    victim = next(name for name in workers if row.runner.startswith(f"{name}-"))
    survivor = next(name for name in workers if name != victim)

    with override_settings(**{k: float(v) for k, v in heartbeat_env().items()}):
        with Sweeper(SWEEP_PERIOD) as sweeper:
            procs.kill_whole(workers[victim])
            killed_at = time.monotonic()
            wait_for(
                lambda: DataRequest.objects.get(pk=row.pk).status == DataRequest.Status.REQUESTED,
                timeout=2 * SWEEP_PERIOD + 30,
                what="the data request to be taken over and requested",
            )
    assert not sweeper.errors, sweeper.errors
    taken_at = sweeper.taken_over_at()
    assert taken_at is not None, "no sweep took the row over"
    print(
        f"killed -> taken over {taken_at - killed_at:.1f}s (sweep period {SWEEP_PERIOD}s, "
        f"stale after {HEARTBEAT_STALE}s)"
    )
    assert taken_at - killed_at <= 2 * SWEEP_PERIOD
    assert sum(report.data_requests for _, report in sweeper.reports) >= 1
    row.refresh_from_db()
    assert row.attempts == 2, "one run killed, one run that finished: never a third"
    assert row.runner.startswith(f"{survivor}-")
    assert (row.windows, [a["status"] for a in row.answers]) == (1, [202])
    assert workers[survivor].poll() is None
