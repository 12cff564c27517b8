"""docs/reliability.md tests 11 and 38: the broker lost or never reached after the row is committed.

Test 11: Redis silent (a proxy blackholes it for the web process only): every delivery is
still stored and answered 200 fast (the publish times out and is logged), rows stay RECEIVED;
once Redis is back the sweeper re-queues them and a real worker processes all of them.
Test 38: a row committed but never published (a web process killed between commit and
publish) is recovered the same way.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.utils import timezone

from ingest.models import Fetch, Notification
from ingest.sweeper import stuck_sweep
from tests.reliability.conftest import NOTIFY_TOKEN, batchlist, http, wait_for
from tests.support import pipeline_settled

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Seconds per delivery while the broker is down, on top of the publish's own socket timeout
# and the slowest answer of the same concurrent load with no publish at all (measured in the
# same run, so a loaded machine moves the floor, not the verdict): 2.5 s on a quiet machine.
MARGIN = 1.0


@pytest.mark.timeout(60)
def test_broker_down_at_receipt_loses_nothing(stack, redis_proxy, redis_db, procs):
    env = dict(stack.env)
    # Four sync workers, as deployed (docker-compose.yml runs sync workers), four senders.
    web = procs.web({**env, "REDIS_URL": redis_proxy.url_for(env["REDIS_URL"])}, workers=4)
    notify = f"{web}/pge/notify/{NOTIFY_TOKEN}/"
    # The worker reaches Redis directly: the broker is down for the web process only, so a
    # message published by mistake would be visible in the queue or processed at once.
    procs.worker(env)
    bodies = [batchlist(stack.subscription_url(days_back=2 + n)) for n in range(20)]

    def deliver(body: bytes) -> tuple[int, float]:
        t0 = time.monotonic()
        answer = http().post(notify, data=body, timeout=30)
        return answer.status_code, time.monotonic() - t0

    # The floor: the same concurrency through the same web workers, each request writing and
    # committing a row (a REJECTED one: not a BatchList) but publishing nothing.
    with ThreadPoolExecutor(max_workers=4) as pool:
        floor = list(pool.map(deliver, [b"<not-a-batchlist/>"] * 8))
    assert [status for status, _ in floor] == [400] * 8
    floor_slowest = max(elapsed for _, elapsed in floor)
    socket_timeout = float(settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"])
    deadline = socket_timeout + MARGIN + floor_slowest

    redis_proxy.set_mode("blackhole")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(deliver, bodies))
    assert [status for status, _ in answers] == [200] * 20
    slowest = max(elapsed for _, elapsed in answers)
    print(
        f"broker blackholed: slowest 200 after {slowest:.2f}s "
        f"(floor {floor_slowest:.2f}s, deadline {deadline:.2f}s)"
    )
    assert slowest < deadline, [round(e, 2) for _, e in answers]
    # Nothing reached the broker: no message waiting, none taken and still running (tasks ack
    # late, so a running one stays in kombu's `unacked` hash) and no row moved on, which a
    # message already handled would have done. Each 200 came after its publish attempt, so
    # there is nothing later to wait for.
    assert redis_db.llen("ingest") == 0
    assert redis_db.hlen("unacked") == 0
    assert Notification.objects.filter(status=Notification.Status.RECEIVED).count() == 20
    assert "not queued (broker unavailable)" in procs.log("web.log")

    redis_proxy.set_mode("pass")
    report = stuck_sweep(now=timezone.now(), age_seconds=0)
    assert report.notifications == 20
    wait_for(pipeline_settled, timeout=40, what="all 20 notifications and their fetches")
    assert Notification.objects.filter(status=Notification.Status.PROCESSED).count() == 20
    fetches = Fetch.objects.all()
    assert fetches.count() == 20
    assert {f.status for f in fetches} == {Fetch.Status.INGESTED}, [
        (f.status, f.reason) for f in fetches
    ]


@pytest.mark.timeout(40)
def test_row_committed_but_never_published_is_recovered_by_the_sweeper(
    stack, redis_db, procs, monkeypatch
):
    from datetime import timedelta

    from ingest import notifications, publish

    procs.worker(stack.env)
    # The web process dies between COMMIT and publish: the on-commit publish never happens.
    monkeypatch.setattr(publish, "notification_enqueue", lambda **kwargs: False)
    received = timezone.now() - timedelta(minutes=10)
    lost = notifications.notification_receive(
        body=batchlist(stack.subscription_url(days_back=3)),
        headers={},
        remote_addr="127.0.0.1",
        now=received,
    )
    monkeypatch.undo()
    # Never published (the patched enqueue sent nothing), so there is nothing to wait for:
    # no message waiting or running, and the row still RECEIVED.
    assert redis_db.llen("ingest") == 0
    assert redis_db.hlen("unacked") == 0
    assert Notification.objects.get(pk=lost.pk).status == Notification.Status.RECEIVED

    # A fresh RECEIVED row (its message may still be in flight) is left alone...
    fresh = Notification.objects.create(
        status=Notification.Status.RECEIVED, received_at=timezone.now(), body=b"x", sha256="0"
    )
    # ...while the production sweep age (GASCAP_INGEST_SWEEP_AGE) picks up the lost one.
    report = stuck_sweep(now=timezone.now())
    assert report.notifications == 1
    wait_for(
        lambda: Fetch.objects.filter(status=Fetch.Status.INGESTED).count() == 1,
        timeout=20,
        what="the recovered notification's fetch",
    )
    assert Notification.objects.get(pk=lost.pk).status == Notification.Status.PROCESSED
    assert Notification.objects.get(pk=fresh.pk).status == Notification.Status.RECEIVED
