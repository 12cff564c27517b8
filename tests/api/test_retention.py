"""Retention after revocation: a revoked customer's readings, rollups and bills are deleted
after GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS, and the API says when and that it happened."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from customers.consent_events import consent_status_event
from customers.models import Authorization
from ingest.data_retention import customer_data_retention_purge as retention_purge
from ingest.models import DailyRollup, IntervalReading, UsagePoint, UsageSummary
from tests.builders import authorization_make

pytestmark = pytest.mark.django_db


def revoke(subscription_id: str, when) -> None:
    authorization = Authorization.objects.get(subscription_id=subscription_id)
    previous = authorization.status
    authorization.status = Authorization.Status.REVOKED
    authorization.save()
    consent_status_event(authorization=authorization, previous=previous, now=when)


def test_unset_keeps_everything(data, settings):
    settings.GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS = None
    revoke("4095251", timezone.now() - timedelta(days=999))
    assert retention_purge(now=timezone.now()) == {"customers": 0, "readings": 0}
    assert IntervalReading.objects.count() == 52


def test_a_revoked_customer_loses_its_data_after_the_period_and_the_api_says_so(
    data,
    settings,
    reader,
):
    settings.GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS = 30
    now = timezone.now()
    revoked = now - timedelta(days=31)
    revoke("4095251", revoked)
    revoke("1", now - timedelta(days=29))  # user-2: not yet
    body = json.loads(reader.get("/api/v1/customers/user-1").content)
    assert body["data_retention"]["purged_at"] is None
    assert body["data_retention"]["purge_after"].startswith(
        (revoked + timedelta(days=30)).date().isoformat()
    )
    other = IntervalReading.objects.exclude(
        meter_reading__usage_point__usage_point_id__in=["5391320451", "7170720474"]
    ).count()
    report = retention_purge(now=now)
    assert report == {"customers": 1, "readings": 50}
    assert IntervalReading.objects.count() == other
    assert not UsagePoint.objects.filter(usage_point_id__in=["5391320451", "7170720474"]).exists()
    assert not DailyRollup.objects.filter(series__usage_point__usage_point_id="5391320451").exists()
    assert UsageSummary.objects.filter(usage_point__usage_point_id="1").exists()  # user-2 kept
    body = json.loads(reader.get("/api/v1/customers/user-1").content)
    assert body["data_retention"]["purged_at"] is not None
    assert body["usage_points"] == []
    assert retention_purge(now=now) == {"customers": 0, "readings": 0}  # once


def test_a_customer_with_a_standing_consent_is_kept(data, settings):
    settings.GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS = 1
    # user-1 re-consented with a second subscription that is still active.
    from customers.models import Customer

    customer = Customer.objects.get(external_id="user-1")
    authorization_make(customer=customer, subscription_id="555", status="ACTIVE")
    revoke("4095251", timezone.now() - timedelta(days=10))
    assert retention_purge(now=timezone.now())["customers"] == 0
