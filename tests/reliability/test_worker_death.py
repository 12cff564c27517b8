"""Issue 17: a fetch whose whole worker died is taken over within two sweep periods.

Two prefork workers (as deployed) with short heartbeat settings consume `pge_fetch`; the
sandbox holds the fetch's answer (`slow` fault) so it is in flight when the worker that claimed
it is SIGKILLed whole (main process and pool, one process group). Its message stays unacked in
Redis (redelivered only after the 2 h visibility timeout) and its row RUNNING. The sweeper, run
every SWEEP_PERIOD as beat would, sees the runner's heartbeat go stale and re-queues the row;
the surviving worker runs it — slowly again (a second `slow` fault longer than the staleness
threshold), and the sweeps during that run leave it alone because its runner still beats. The
fetch ends INGESTED with exactly two runs, and the readings equal a golden run (count and
checksum).
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from django.utils import timezone

from ingest import fetches
from ingest.models import Fetch, FetchAttempt, IntervalReading, ReadingRevision
from ingest.publish import fetch_enqueue
from tests.reliability.conftest import (
    HEARTBEAT_STALE,
    SWEEP_PERIOD,
    Sweeper,
    heartbeat_env,
    readings_checksum,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

DAYS_BACK = 3
# The survivor's run: well past the staleness threshold and a sweep period, so at least one
# sweep runs while it holds the row.
SLOW_SURVIVOR = HEARTBEAT_STALE + SWEEP_PERIOD + 1


@pytest.mark.timeout(150)
def test_whole_worker_killed_mid_fetch_is_taken_over_within_two_sweeps(stack, redis_db, procs):
    from sandbox.faults import Fault

    # Golden: the same window (a fresh correlation) fetched and imported in this process.
    assert (
        fetches.fetch_run(
            fetch_id=stack.subscription_fetch_new(days_back=DAYS_BACK), now=timezone.now()
        ).status
        == "INGESTED"
    )
    golden = readings_checksum()
    assert golden[0] > 0
    IntervalReading.objects.all().delete()
    ReadingRevision.objects.all().delete()
    Fetch.objects.all().delete()

    env = {**stack.env, **heartbeat_env()}
    workers = procs.worker_pair(env)
    # Held long enough that the kill lands inside the fetch, whoever takes it.
    stack.sandbox.state.fault_add(
        Fault(kind="slow", subscription_id=stack.sid, times=1, seconds=15.0)
    )
    fetch_id = stack.subscription_fetch_new(days_back=DAYS_BACK)
    assert fetch_enqueue(fetch_id=fetch_id)

    # In flight: the sandbox has taken the fault, i.e. it is holding the worker's GET.
    wait_for(lambda: not stack.sandbox.state.faults_list(), timeout=30, what="the GET to arrive")
    row = Fetch.objects.get(pk=fetch_id)
    assert row.status == Fetch.Status.RUNNING and row.attempts == 1
    assert row.runner, "the claim names its worker process"
    victim = next(name for name in workers if row.runner.startswith(f"{name}-"))
    survivor = next(name for name in workers if name != victim)
    # The survivor's run is slow too: the sweeps during it must leave it alone.
    stack.sandbox.state.fault_add(
        Fault(kind="slow", subscription_id=stack.sid, times=1, seconds=SLOW_SURVIVOR)
    )

    with override_settings(**{k: float(v) for k, v in heartbeat_env().items()}):
        with Sweeper(SWEEP_PERIOD) as sweeper:
            procs.kill_whole(workers[victim])
            killed_at = time.monotonic()
            wait_for(
                lambda: Fetch.objects.get(pk=fetch_id).status == Fetch.Status.INGESTED,
                timeout=2 * SWEEP_PERIOD + SLOW_SURVIVOR + 30,
                what="the fetch to be taken over and ingested",
            )
            ingested_at = time.monotonic()
    assert not sweeper.errors, sweeper.errors
    taken_at = sweeper.taken_over_at()
    assert taken_at is not None, "no sweep took the row over"
    print(
        f"killed -> taken over {taken_at - killed_at:.1f}s, -> ingested "
        f"{ingested_at - killed_at:.1f}s (sweep period {SWEEP_PERIOD}s, stale after "
        f"{HEARTBEAT_STALE}s)"
    )
    assert taken_at - killed_at <= 2 * SWEEP_PERIOD
    # Sweeps ran while the survivor held the row; none took it: one take-over in all.
    assert sum(report.taken_over for _, report in sweeper.reports) == 1
    assert len([1 for at, _ in sweeper.reports if taken_at < at < ingested_at]) >= 1

    row = Fetch.objects.get(pk=fetch_id)
    assert row.attempts == 2, "one run killed, one run that finished: never a third"
    assert row.runner.startswith(f"{survivor}-")
    # The victim's GET never completed: only the survivor's attempt row exists.
    assert list(
        FetchAttempt.objects.filter(fetch_id=fetch_id).values_list("outcome", flat=True)
    ) == [FetchAttempt.Outcome.OK]
    assert readings_checksum() == golden
    assert workers[survivor].poll() is None
    assert "IntegrityError" not in procs.log(f"worker-{survivor}.log")
