"""docs/reliability.md test 29: PG&E's ~1 request/second budget holds across workers.

Two worker processes share the Redis limiter (GASCAP_PGE_RATE_LIMIT_PER_SECOND=1). Eight
fetches queued at once reach the sandbox no closer than ~1 s apart (measured at arrival,
whichever worker sent them), and a 429 with `Retry-After: 3` keeps that fetch away for at
least 3 s.
"""

from __future__ import annotations

import itertools
import time

import pytest
from django.utils import timezone

from ingest.fetch_rows import fetch_open_or_create
from ingest.models import Fetch, FetchAttempt
from ingest.publish import fetch_enqueue
from tests.reliability.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FETCHES = 8


@pytest.mark.timeout(60)
def test_two_workers_keep_one_request_per_second(stack, redis_db, procs):
    from sandbox.faults import Fault

    env = {**stack.env, "GASCAP_PGE_RATE_LIMIT_PER_SECOND": "1"}
    procs.worker(env, name="rel-a")
    procs.worker(env, name="rel-b")

    # Arrival times at PG&E's resource API, taken before the sandbox does anything.
    arrivals: list[float] = []
    app = stack.sandbox.app
    handle = app.handle

    def recording_handle(request):  # type: ignore[no-untyped-def]
        if "/GreenButtonConnect/" in request.path:
            arrivals.append(time.monotonic())
        return handle(request)

    app.handle = recording_handle

    stack.sandbox.state.fault_add(
        Fault(kind="rate_limit", subscription_id=stack.sid, times=1, seconds=3)
    )
    ids = []
    for n in range(FETCHES):
        fetch, _ = fetch_open_or_create(
            url=stack.subscription_url(days_back=2 + n),
            kind=Fetch.Kind.SUBSCRIPTION,
            subscription_id=stack.sid,
            now=timezone.now(),
        )
        ids.append(fetch.pk)
    for fetch_id in ids:
        assert fetch_enqueue(fetch_id=fetch_id)

    wait_for(
        lambda: Fetch.objects.filter(status=Fetch.Status.INGESTED).count() == FETCHES,
        timeout=40,
        what=f"{FETCHES} fetches ingested",
    )
    # Both workers did take part: the limit held across processes, not inside one.
    ran = [procs.log(f"worker-{n}.log").count("ingest.fetch_run[") for n in ("rel-a", "rel-b")]
    assert all(ran), ran

    assert len(arrivals) == len(stack.data_requests()) >= FETCHES + 1
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    print(f"requests={len(arrivals)} min_gap={min(gaps):.3f}s")
    assert min(gaps) >= 0.9, [round(g, 3) for g in gaps]

    limited = FetchAttempt.objects.get(status_code=429)
    following = (
        FetchAttempt.objects.filter(fetch=limited.fetch, started_at__gt=limited.started_at)
        .order_by("started_at")
        .first()
    )
    assert following is not None and following.status_code == 200
    assert (following.started_at - limited.started_at).total_seconds() >= 3.0
