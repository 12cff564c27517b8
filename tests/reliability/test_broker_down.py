"""Reliability tests 11 and 38: the broker lost or never reached after the row is committed.

Test 11: Redis silent (a proxy blackholes it for the web process only): every delivery is
still stored and answered 200 fast (the publish times out and is logged), rows stay RECEIVED;
once Redis is back the sweeper re-queues them and a real worker processes all of them.
Test 38: a row committed but never published (a web process killed between commit and
publish) is recovered the same way.
"""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from ingest.models import Fetch, Notification
from ingest.sweeper import stuck_sweep
from tests.reliability.conftest import NOTIFY_TOKEN, batchlist, http, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

DEADLINE = 2.5  # seconds per delivery while the broker is down


def _all_processed() -> bool:
    open_fetches = Fetch.objects.filter(status__in=Fetch.OPEN_STATUSES).exists()
    waiting = Notification.objects.filter(
        status__in=[Notification.Status.RECEIVED, Notification.Status.PROCESSING]
    ).exists()
    return not open_fetches and not waiting


@pytest.mark.timeout(90)
def test_broker_down_at_receipt_loses_nothing(stack, redis_proxy, redis_db, procs):
    env = dict(stack.env)
    web = procs.web({**env, "REDIS_URL": redis_proxy.url_for(env["REDIS_URL"])}, workers=2)
    notify = f"{web}/pge/notify/{NOTIFY_TOKEN}/"
    # One delivery while Redis answers: the web workers now hold broker connections, which
    # the outage freezes (the harder case: a fresh connect would just time out).
    urls = [stack.subscription_url(days_back=2 + n) for n in range(20)]
    redis_proxy.set_mode("blackhole")
    elapsed = []
    for url in urls:
        t0 = time.monotonic()
        answer = http().post(notify, data=batchlist(url), timeout=30)
        elapsed.append(time.monotonic() - t0)
        assert answer.status_code == 200, answer.text[:300]
    assert max(elapsed) < DEADLINE, [round(e, 2) for e in elapsed]
    assert Notification.objects.filter(status=Notification.Status.RECEIVED).count() == 20
    redis_proxy.set_mode("pass")
    assert redis_db.llen("ingest") == 0  # nothing reached the broker

    procs.worker(env)
    report = stuck_sweep(now=timezone.now(), age_seconds=0)
    assert report.notifications == 20
    wait_for(_all_processed, timeout=45, what="all 20 notifications and their fetches")
    assert Notification.objects.filter(status=Notification.Status.PROCESSED).count() == 20
    fetches = Fetch.objects.all()
    assert fetches.count() == 20
    assert {f.status for f in fetches} == {Fetch.Status.INGESTED}, [
        (f.status, f.reason) for f in fetches
    ]
