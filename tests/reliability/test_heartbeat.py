"""Issue 17, the parts without subprocesses: runner heartbeats, the take-over rule of the
sweeper, the lease that fences a run taken for dead, and the broker guard.

The real-process versions are test_worker_death.py (a whole worker SIGKILLed mid-fetch) and
test_redis_restart.py (Redis stopped, restarted and killed under two workers).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import checks
from django.db.models.functions import Now
from django.utils import timezone

from gascap import worker_heartbeat
from gascap.models import WorkerHeartbeat
from ingest import claims, notifications, publish, sweeper
from ingest.claims import LeaseLost, row_claim, row_save
from ingest.models import Fetch, Notification
from tests.reliability.conftest import batchlist, wait_for

URL = "https://api.example.test/GreenButtonConnect/espi/1_1/resource/Batch/Subscription/7?x=1"


@pytest.fixture
def queued(monkeypatch) -> dict[str, list[int]]:
    """What the sweeper publishes, by task (no broker needed)."""
    sent: dict[str, list[int]] = {"fetch": [], "notification": []}
    monkeypatch.setattr(
        publish,
        "fetch_enqueue",
        lambda *, fetch_id, countdown=None: sent["fetch"].append(fetch_id) or True,
    )
    monkeypatch.setattr(
        publish,
        "notification_enqueue",
        lambda *, notification_id: sent["notification"].append(notification_id) or True,
    )
    return sent


def _beat(runner: str, *, seconds_ago: float = 0) -> None:
    worker_heartbeat.runner_beat(runner=runner, hostname="celery@test", pid=4242)
    if seconds_ago:
        WorkerHeartbeat.objects.filter(runner=runner).update(
            beat_at=Now() - timedelta(seconds=seconds_ago)
        )


def _running_fetch(*, runner: str, started_ago: float = 1.0, lease: str = "L1") -> Fetch:
    now = timezone.now()
    return Fetch.objects.create(
        url=URL,
        url_sha256="a" * 64,
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id="7",
        status=Fetch.Status.RUNNING,
        attempts=1,
        created_at=now - timedelta(seconds=started_ago),
        started_at=now - timedelta(seconds=started_ago),
        runner=runner,
        lease=lease,
    )


@pytest.mark.django_db
def test_a_dead_runners_fetch_is_handed_back_and_queued_at_once(settings, queued):
    settings.GASCAP_WORKER_HEARTBEAT_STALE = 30
    _beat("dead/1/aa", seconds_ago=31)
    fetch = _running_fetch(runner="dead/1/aa")  # started 1 s ago: far below the sweep age

    report = sweeper.stuck_sweep(now=timezone.now())

    fetch.refresh_from_db()
    assert (fetch.status, fetch.reason, fetch.runner, fetch.lease) == (
        Fetch.Status.RETRYING,
        "runner_lost",
        "",
        "",
    )
    assert queued["fetch"] == [fetch.pk]
    assert (report.fetches, report.taken_over) == (1, 1)


@pytest.mark.django_db
def test_a_slow_runner_that_still_beats_keeps_its_row(settings, queued):
    settings.GASCAP_WORKER_HEARTBEAT_STALE = 30
    _beat("slow/1/bb", seconds_ago=5)
    # Running for 20 minutes: slow, but under the hard time limit, and its runner beats.
    fetch = _running_fetch(runner="slow/1/bb", started_ago=1200)

    report = sweeper.stuck_sweep(now=timezone.now())

    fetch.refresh_from_db()
    assert (fetch.status, fetch.runner, fetch.lease) == (Fetch.Status.RUNNING, "slow/1/bb", "L1")
    assert queued["fetch"] == [] and report.taken_over == 0


@pytest.mark.django_db
def test_a_runner_without_any_heartbeat_row_is_dead(queued):
    fetch = _running_fetch(runner="gone/1/cc")  # its row was pruned, or it never beat
    sweeper.stuck_sweep(now=timezone.now())
    fetch.refresh_from_db()
    assert fetch.status == Fetch.Status.RETRYING and queued["fetch"] == [fetch.pk]


@pytest.mark.django_db
def test_a_row_claimed_outside_a_worker_keeps_the_time_limit_rule(settings, queued):
    fresh = _running_fetch(runner="", started_ago=60)
    sweeper.stuck_sweep(now=timezone.now())
    assert Fetch.objects.get(pk=fresh.pk).status == Fetch.Status.RUNNING
    assert queued["fetch"] == []

    Fetch.objects.filter(pk=fresh.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61)
    )
    sweeper.stuck_sweep(now=timezone.now())
    assert queued["fetch"] == [fresh.pk]


@pytest.mark.django_db
def test_a_dead_runners_notification_goes_back_to_received_and_is_queued(queued):
    row = Notification.objects.create(
        status=Notification.Status.PROCESSING,
        received_at=timezone.now(),
        started_at=timezone.now(),
        body=batchlist(URL),
        sha256="b" * 64,
        attempts=1,
        runner="dead/2/dd",
        lease="L2",
    )
    report = sweeper.stuck_sweep(now=timezone.now())
    row.refresh_from_db()
    assert (row.status, row.runner) == (Notification.Status.RECEIVED, "")
    assert queued["notification"] == [row.pk] and report.taken_over == 1
    # Claimed again, it names the new runner and a new lease; the attempt still counts.
    claimed = notifications._claim(row.pk, timezone.now())
    assert claimed is not None and claimed.attempts == 2 and claimed.lease not in ("", "L2")


@pytest.mark.django_db
def test_the_take_over_is_conditional_on_the_runner_and_lease_read(monkeypatch, queued):
    """Between the sweeper's read and its UPDATE the runner finished: nothing is handed back."""
    fetch = _running_fetch(runner="dead/3/ee")
    real_orphans = worker_heartbeat.orphans

    def orphans_then_finish(queryset):  # the runner records its outcome right after the read
        rows = list(real_orphans(queryset).values_list("pk", "runner", "lease"))
        Fetch.objects.filter(pk=fetch.pk).update(status=Fetch.Status.INGESTED)
        return _Rows(rows)

    monkeypatch.setattr(worker_heartbeat, "orphans", orphans_then_finish)
    assert (
        worker_heartbeat.orphans_release(
            queryset=Fetch.objects.filter(status=Fetch.Status.RUNNING),
            fields={"status": Fetch.Status.RETRYING},
        )
        == []
    )
    assert Fetch.objects.get(pk=fetch.pk).status == Fetch.Status.INGESTED


class _Rows(list):
    def values_list(self, *fields):  # type: ignore[no-untyped-def]
        return self


@pytest.mark.django_db
def test_a_run_taken_for_dead_cannot_overwrite_the_run_that_took_over(monkeypatch, queued):
    fetch = _running_fetch(runner="", lease="")
    Fetch.objects.filter(pk=fetch.pk).update(status=Fetch.Status.PENDING)
    monkeypatch.setattr(claims, "this_runner", lambda: "frozen/4/ff")
    first = row_claim(Fetch, pk=fetch.pk, now=timezone.now(), task_id="task-1")
    assert first is not None and first.runner == "frozen/4/ff"

    sweeper.stuck_sweep(now=timezone.now())  # no heartbeat for "frozen/4/ff": taken over
    monkeypatch.setattr(claims, "this_runner", lambda: "live/5/gg")
    second = row_claim(Fetch, pk=fetch.pk, now=timezone.now(), task_id="task-2")
    assert second is not None and second.lease != first.lease
    assert second.attempts == first.attempts + 1

    row_save(second, status=Fetch.Status.INGESTED, finished_at=timezone.now())
    # The frozen run wakes up and fails: its write is refused, the outcome stands.
    with pytest.raises(LeaseLost):
        row_save(first, status=Fetch.Status.FAILED, reason="timeout")
    assert Fetch.objects.get(pk=fetch.pk).status == Fetch.Status.INGESTED


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_beats_and_cleans_up(settings):
    settings.GASCAP_WORKER_HEARTBEAT_INTERVAL = 0.05
    runner = worker_heartbeat.heartbeat_start(hostname="celery@unit")
    try:
        assert runner.startswith("celery@unit/")
        # Normally stored before heartbeat_start returns; under heavy load a little later.
        wait_for(lambda: worker_heartbeat.this_runner() == runner, timeout=10, what="a beat")
        first = WorkerHeartbeat.objects.get(runner=runner).beat_at
        wait_for(
            lambda: WorkerHeartbeat.objects.get(runner=runner).beat_at > first,
            timeout=10,
            what="a second beat",
        )
        assert worker_heartbeat.runners_alive().filter(runner=runner).exists()
        assert worker_heartbeat.heartbeat_start(hostname="celery@unit") == runner  # idempotent
    finally:
        worker_heartbeat.heartbeat_stop()
    assert worker_heartbeat.this_runner() == ""
    assert not WorkerHeartbeat.objects.filter(runner=runner).exists()


@pytest.mark.django_db
def test_old_heartbeats_are_pruned():
    _beat("old/6/hh", seconds_ago=2 * 86400)
    _beat("new/7/ii")
    assert worker_heartbeat.heartbeats_prune() == 1
    assert list(WorkerHeartbeat.objects.values_list("runner", flat=True)) == ["new/7/ii"]


def test_heartbeat_settings_out_of_order_fail_the_system_check(settings):
    from gascap.checks import check_worker_heartbeat

    assert check_worker_heartbeat() == []
    settings.GASCAP_WORKER_HEARTBEAT_STALE = settings.GASCAP_INGEST_SWEEP_PERIOD
    errors = check_worker_heartbeat()
    assert [e.id for e in errors] == ["gascap.E002"] and errors[0].level == checks.ERROR


def test_broker_guard_is_installed_with_the_celery_app():
    from kombu.transport import redis as kombu_redis

    import gascap.celery  # noqa: F401
    from gascap.broker_reconnect import redis_restore_guard_install

    assert getattr(kombu_redis.QoS.restore_unacked, "__wrapped__", None) is not None
    assert redis_restore_guard_install() is False  # idempotent


@pytest.mark.redis
def test_closing_a_channel_on_a_detached_transport_no_longer_raises():
    """The crash, deterministically: Celery 5.7 closes the consumer's connection after
    `collect()` detached its transport; the default channel still holds an unacked delivery,
    and restoring it built a client from `transport.client = None`."""
    import os

    from kombu import Connection

    import gascap.celery  # noqa: F401  (installs the guard)

    connection = Connection(os.environ["REDIS_URL"])
    channel = connection.default_channel
    channel.qos._delivered["tag-1"] = object()  # an unacked delivery
    connection.transport.client = None  # what collect() leaves behind
    channel.close()  # raised AttributeError: 'NoneType' object has no attribute 'hostname'
    assert channel.closed and not channel.qos._delivered
