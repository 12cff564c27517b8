"""What the pipeline tests share (tests/ingest/test_pipeline_*.py): a stored notification,
one stage run in this process with its on-commit callbacks executed, a subscription fetch
row, a bearer-token matcher and a readings checksum."""

from __future__ import annotations

from django.db.models import Sum
from responses import matchers

from ingest import fetch_rows, fetches, notifications
from ingest.models import Fetch, IntervalReading, Notification
from tests.builders import notification_make
from tests.ingest.conftest import SID, subscription_url

FEED_TYPE = "application/atom+xml"


def stored(body: bytes, now) -> Notification:
    return notification_make(body=body, received_at=now)


def bearer(token: str):
    return matchers.header_matcher({"Authorization": f"Bearer {token}"})


def process(notification: Notification, now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return notifications.notification_process(notification_id=notification.pk, now=now)


def run(fetch: Fetch, now, django_capture_on_commit_callbacks, task_id=None):
    with django_capture_on_commit_callbacks(execute=True):
        return fetches.fetch_run(fetch_id=fetch.pk, now=now, task_id=task_id)


def readings_checksum() -> tuple[int, int]:
    agg = IntervalReading.objects.aggregate(total=Sum("value"))
    return IntervalReading.objects.count(), agg["total"] or 0


def subscription_fetch(now, url=None) -> Fetch:
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=url or subscription_url(), kind=Fetch.Kind.SUBSCRIPTION, subscription_id=SID, now=now
    )
    return fetch
