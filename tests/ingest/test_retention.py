"""Pipeline retention (ingest/retention.py): old notifications, fetches and attempts go in
bounded windows, open work and what it points at stays, processed bodies are emptied sooner."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from ingest import replay, retention
from ingest.models import DataRequest, Fetch, FetchAttempt, Notification
from tests.builders import notification_make
from tests.ingest.conftest import batchlist, subscription_url

pytestmark = pytest.mark.django_db


def _notification(status: str, received_at: datetime) -> Notification:
    body = batchlist(subscription_url()) + str(received_at).encode()
    return notification_make(body=body, received_at=received_at, status=status)


def _fetch(status: str, created_at: datetime, **extra) -> Fetch:
    url = f"https://api.pge.com/x/{created_at.timestamp()}/{Fetch.objects.count()}"
    fetch = Fetch.objects.create(
        url=url,
        url_sha256=hashlib.sha256(url.encode()).hexdigest(),
        kind=Fetch.Kind.SUBSCRIPTION,
        status=status,
        created_at=created_at,
        **extra,
    )
    FetchAttempt.objects.create(
        fetch=fetch, url=url, started_at=created_at, outcome=FetchAttempt.Outcome.OK
    )
    return fetch


def test_old_finished_rows_go_and_open_work_stays(now):
    old = now - timedelta(days=91)
    young = now - timedelta(days=10)
    done_old = _notification(Notification.Status.PROCESSED, old)
    stuck_old = _notification(Notification.Status.RECEIVED, old)
    held_old = _notification(Notification.Status.PROCESSED, old)  # an open fetch points at it
    replayed_old = _notification(Notification.Status.PROCESSED, old)  # a young fetch does
    kept_young = _notification(Notification.Status.PROCESSED, young)
    dup = _notification(Notification.Status.DUPLICATE, young)
    dup.duplicate_of = done_old
    dup.save()

    ingested_old = _fetch(Fetch.Status.INGESTED, old, notification=done_old)
    failed_old = _fetch(Fetch.Status.FAILED, old)
    open_old = _fetch(Fetch.Status.RETRYING, old, notification=held_old)
    parent_of_open = _fetch(Fetch.Status.INGESTED, old)
    open_child = _fetch(Fetch.Status.PENDING, young, parent=parent_of_open)
    young_child = _fetch(Fetch.Status.INGESTED, young, parent=failed_old, notification=replayed_old)

    report = retention.pipeline_prune(now=now, retention_days=90, body_retention_days=0, batch=2)

    assert set(Notification.objects.values_list("pk", flat=True)) == {
        stuck_old.pk,
        held_old.pk,
        kept_young.pk,
        dup.pk,
    }
    assert set(Fetch.objects.values_list("pk", flat=True)) == {
        open_old.pk,
        parent_of_open.pk,
        open_child.pk,
        young_child.pk,
    }
    assert not FetchAttempt.objects.filter(fetch_id__in=[ingested_old.pk, failed_old.pk]).exists()
    assert FetchAttempt.objects.count() == 4
    young_child.refresh_from_db()
    dup.refresh_from_db()
    assert young_child.parent_id is None and young_child.notification_id is None
    assert dup.duplicate_of_id is None
    assert (report.notifications, report.fetches, report.attempts) == (2, 2, 2)
    # batch=2: the fetch ids and the notification ids span several windows, one per transaction.
    assert report.batches >= 3

    again = retention.pipeline_prune(now=now, retention_days=90, body_retention_days=0, batch=2)
    assert (again.notifications, again.fetches, again.attempts) == (0, 0, 0)


def test_zero_days_keeps_everything(now):
    _notification(Notification.Status.PROCESSED, now - timedelta(days=4000))
    _fetch(Fetch.Status.INGESTED, now - timedelta(days=4000))
    report = retention.pipeline_prune(now=now, retention_days=0, body_retention_days=0)
    assert (report.notifications, report.fetches, report.bodies_dropped) == (0, 0, 0)
    assert Notification.objects.count() == 1 and Fetch.objects.count() == 1


def test_processed_bodies_are_dropped_sooner_and_not_replayed(now, published):
    old = now - timedelta(days=31)
    processed = _notification(Notification.Status.PROCESSED, old)
    failed = _notification(Notification.Status.FAILED, old)
    fresh = _notification(Notification.Status.PROCESSED, now - timedelta(days=2))
    size, digest = processed.body_size, processed.sha256

    report = retention.pipeline_prune(now=now, retention_days=90, body_retention_days=30)

    assert report.bodies_dropped == 1
    processed.refresh_from_db()
    failed.refresh_from_db()
    fresh.refresh_from_db()
    assert bytes(processed.body) == b"" and retention.body_dropped(processed)
    assert (processed.body_size, processed.sha256) == (size, digest)
    assert bytes(failed.body) and bytes(fresh.body)  # an operator may still replay a failure
    assert not retention.body_dropped(fresh)
    # Nothing left to process: a replay leaves it alone instead of failing it as malformed.
    assert replay.notifications_replay(notification_ids=[processed.pk, fresh.pk]) == 1
    processed.refresh_from_db()
    assert processed.status == Notification.Status.PROCESSED
    assert retention.pipeline_prune(now=now, body_retention_days=30).bodies_dropped == 0


def test_daily_task_uses_the_settings(now, settings):
    from ingest import tasks

    settings.GASCAP_PIPELINE_RETENTION_DAYS = 1
    settings.GASCAP_NOTIFICATION_BODY_RETENTION_DAYS = 0
    _fetch(Fetch.Status.INGESTED, datetime.now(tz=now.tzinfo) - timedelta(days=2))
    assert tasks.pipeline_prune_task() == {
        "notifications": 0,
        "fetches": 1,
        "attempts": 1,
        "bodies_dropped": 0,
        "data_requests": 0,
    }


def test_old_finished_data_requests_go_and_open_ones_stay(now):
    old = now - timedelta(days=91)

    def request(status: str, sid: str, created_at: datetime) -> DataRequest:
        return DataRequest.objects.create(
            kind=DataRequest.Kind.SUBSCRIPTION,
            origin=DataRequest.Origin.DAILY,
            subscription_id=sid,
            end=created_at,
            status=status,
            created_at=created_at,
        )

    gone = [
        request(DataRequest.Status.REQUESTED, "S1", old),
        request(DataRequest.Status.FAILED, "S2", old),
    ]
    answered = _fetch(Fetch.Status.INGESTED, now, data_request=gone[0])
    kept = [
        request(DataRequest.Status.RETRYING, "S3", old),  # open work, however old
        request(DataRequest.Status.REQUESTED, "S4", now - timedelta(days=89)),
    ]
    report = retention.pipeline_prune(now=now, retention_days=90, body_retention_days=0, batch=1)
    assert report.data_requests == 2
    assert set(DataRequest.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    answered.refresh_from_db()
    assert answered.data_request_id is None  # the younger fetch row stays, unlinked


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_locked_by_running_work_is_skipped_not_waited_for(now):
    """A window never waits on a row another transaction holds (a replay, the sweeper): it
    skips it, and the next day's run takes it. lock_timeout makes a wait fail loudly."""
    old = now - timedelta(days=100)
    locked = _fetch(Fetch.Status.FAILED, old)
    free = _fetch(Fetch.Status.FAILED, old)
    holding = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                Fetch.objects.select_for_update().get(pk=locked.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        report = retention.pipeline_prune(now=now, retention_days=90, body_retention_days=0)
    finally:
        release.set()
        holder.join(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert report.fetches == 1
    assert set(Fetch.objects.values_list("pk", flat=True)) == {locked.pk}
    assert free.pk not in set(FetchAttempt.objects.values_list("fetch_id", flat=True))
    assert retention.pipeline_prune(now=now, retention_days=90, body_retention_days=0).fetches == 1
