"""Issue 17: Celery workers stay up across Redis stops, restarts and a kill, and nothing is lost.

A redis-server of the test's own (AOF, as docker-compose.yml runs it) is the broker of two
prefork workers ingesting fetches the sandbox answers slowly. While fetches are in flight,
Redis is stopped (SIGTERM) and started again three times, then killed (SIGKILL) and restarted
from its AOF. Before the guard in gascap/broker_reconnect.py a worker died with
`Unrecoverable error: AttributeError(... 'hostname')` one to three times per restart.

Pass: both worker processes are alive at the end and never logged an unrecoverable error, every
fetch is INGESTED, and the readings equal a golden run of the same windows (count, checksum).
Fetches cancelled by the connection loss (Celery terminates late-ack tasks it can no longer
acknowledge) are re-queued by the sweeper once their pool process's heartbeat is stale.
"""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone

from ingest import fetches
from ingest.models import Fetch, IntervalReading, ReadingRevision
from ingest.publish import fetch_enqueue
from tests.reliability.conftest import (
    SWEEP_PERIOD,
    Sweeper,
    heartbeat_env,
    readings_checksum,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WINDOWS = list(range(2, 14))  # days back, one day each
STOPS = 3


@pytest.mark.timeout(240)
def test_workers_survive_redis_restarts_and_lose_nothing(stack, private_redis, procs):
    from sandbox.faults import Fault

    for days_back in WINDOWS:
        result = fetches.fetch_run(
            fetch_id=stack.subscription_fetch_new(days_back=days_back), now=timezone.now()
        )
        assert result.status == Fetch.Status.INGESTED, result
    golden = readings_checksum()
    assert golden[0] > 0
    IntervalReading.objects.all().delete()
    ReadingRevision.objects.all().delete()
    Fetch.objects.all().delete()

    env = {**stack.env, **heartbeat_env(), "REDIS_URL": private_redis.url}
    workers = procs.worker_pair(env)
    logs = {name: f"worker-{name}.log" for name in workers}
    stack.sandbox.state.fault_add(
        Fault(kind="slow", subscription_id=stack.sid, times=None, seconds=1.0)
    )
    ids = [stack.subscription_fetch_new(days_back=days_back) for days_back in WINDOWS]
    for fetch_id in ids:
        assert fetch_enqueue(fetch_id=fetch_id)

    def reconnected(count: int) -> bool:
        return all(procs.log(log).count("Connected to redis") >= count for log in logs.values())

    def in_flight() -> bool:
        return Fetch.objects.filter(pk__in=ids, status=Fetch.Status.RUNNING).exists()

    outages = [private_redis.stop] * STOPS + [private_redis.kill9]
    settings_now = {k: float(v) for k, v in heartbeat_env().items()}
    with override_settings(**settings_now), Sweeper(SWEEP_PERIOD, age_seconds=3) as sweeper:
        for n, outage in enumerate(outages, start=1):
            wait_for(in_flight, timeout=60, what=f"a fetch in flight before outage {n}")
            outage()
            wait_for(
                lambda n=n: all(
                    procs.log(log).count("Connection to broker lost") >= n for log in logs.values()
                ),
                timeout=30,
                what=f"both workers to see outage {n}",
            )
            private_redis.start()
            wait_for(lambda n=n: reconnected(n + 1), timeout=60, what=f"reconnect {n}")
            assert all(proc.poll() is None for proc in workers.values()), "a worker exited"
        try:
            wait_for(
                lambda: (
                    Fetch.objects.filter(pk__in=ids, status=Fetch.Status.INGESTED).count()
                    == len(ids)
                ),
                timeout=120,
                what="every fetch to be ingested",
            )
        except AssertionError as exc:
            # Seen once in CI (not reproduced in 7 other runs): say which rows were left and how.
            rows = Fetch.objects.filter(pk__in=ids).exclude(status=Fetch.Status.INGESTED)
            left = list(rows.values("pk", "status", "reason", "runner", "attempts", "error"))
            tracebacks = "\n".join(row.traceback[-3000:] for row in rows if row.traceback)
            raise AssertionError(f"{exc}; not ingested: {left}\n{tracebacks}") from None
    assert not sweeper.errors, sweeper.errors

    for name, proc in workers.items():
        text = procs.log(logs[name])
        assert proc.poll() is None, f"worker {name} exited:\n{text[-3000:]}"
        assert "Unrecoverable error" not in text, text[-3000:]
        assert text.count("Connection to broker lost") >= len(outages)
    statuses = dict(Fetch.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert set(statuses.values()) == {Fetch.Status.INGESTED}, statuses
    assert readings_checksum() == golden
    taken_over = sum(report.taken_over for _, report in sweeper.reports)
    print(f"{len(outages)} outages, {taken_over} fetch(es) taken over from terminated runs")
