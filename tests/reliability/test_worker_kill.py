"""docs/reliability.md test 30 (simplified): SIGKILL the pool child in the middle of a fetch.

A prefork worker (concurrency 1, late ack, reject on worker lost) ingests documents fetched
from the sandbox, each held ~1 s by the `slow` fault. The child is killed during a fetch three
times. After the drain every fetch is INGESTED within the poison limit, and the readings equal
a golden run of the same windows made in this process: same count, same checksum, no
duplicate (the reading key is the primary key) and no IntegrityError.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from django.conf import settings
from django.utils import timezone

from ingest import fetches
from ingest.models import Fetch, IntervalReading, ReadingRevision
from ingest.publish import fetch_enqueue
from tests.reliability.conftest import readings_checksum, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WINDOWS = [2, 3, 4, 5]  # days back, one day each
KILLS = 3


def _pool_children(main_pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "--ppid", str(main_pid), "-o", "pid="], capture_output=True, text=True, check=False
    ).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.timeout(80)
def test_killed_pool_child_loses_and_duplicates_nothing(stack, redis_db, procs):
    from sandbox.faults import Fault

    # Golden: the same windows (fresh correlations) fetched and imported in this process.
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

    worker = procs.worker(stack.env, pool="prefork", concurrency=1)
    stack.sandbox.state.fault_add(
        Fault(kind="slow", subscription_id=stack.sid, times=None, seconds=1.0)
    )
    ids = [stack.subscription_fetch_new(days_back=days_back) for days_back in WINDOWS]
    for fetch_id in ids:
        assert fetch_enqueue(fetch_id=fetch_id)

    kills = 0
    last_kill = timezone.now()
    deadline = time.monotonic() + 40
    while kills < KILLS and time.monotonic() < deadline:
        running = Fetch.objects.filter(
            status=Fetch.Status.RUNNING, started_at__gt=last_kill
        ).first()
        children = _pool_children(worker.pid)
        if running is None or len(children) != 1:
            time.sleep(0.05)
            continue
        time.sleep(0.3)  # inside the fetch: the sandbox holds its answer for 1 s
        os.kill(children[0], signal.SIGKILL)
        kills += 1
        last_kill = timezone.now()
    assert kills == KILLS

    wait_for(
        lambda: not Fetch.objects.filter(status__in=Fetch.OPEN_STATUSES).exists(),
        timeout=40,
        what="the queue to drain",
    )
    log = procs.log("worker-rel.log")
    assert log.count("WorkerLostError") >= KILLS or log.count("SIGKILL") >= KILLS, log[-3000:]
    limit = int(settings.GASCAP_INGEST_POISON_LIMIT)
    rows = list(Fetch.objects.filter(pk__in=ids).values_list("status", "attempts"))
    assert all(status == Fetch.Status.INGESTED for status, _ in rows), rows
    assert all(attempts <= limit for _, attempts in rows), rows
    assert sum(attempts for _, attempts in rows) >= len(ids) + KILLS  # each kill cost a rerun
    assert readings_checksum() == golden
    assert "IntegrityError" not in log
