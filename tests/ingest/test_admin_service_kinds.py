"""After a fetch imports PG&E's data, the consent's usage points carry the service kind the
data's ServiceCategory gave (the Authorization resource lists them as "other"), so operators
can filter consents by electric/gas."""

from __future__ import annotations

import pytest

from customers.models import SubscriptionUsagePoint
from ingest import fetch_rows, fetches
from ingest.models import Fetch
from tests.ingest.conftest import UPID, bulk_url, espi_feed, subscription_url

pytestmark = pytest.mark.django_db

FEED_TYPE = "application/atom+xml"


def test_subscription_fetch_records_the_usage_point_kind(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    SubscriptionUsagePoint.objects.create(authorization=authorization, usage_point_id=UPID)
    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=subscription_url(),
        kind=Fetch.Kind.SUBSCRIPTION,
        subscription_id=authorization.subscription_id,
        now=now,
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = fetches.fetch_run(fetch_id=fetch.pk, now=now)
    assert outcome.status == Fetch.Status.INGESTED
    assert SubscriptionUsagePoint.objects.get().service_kind == "electric"


def test_bulk_fetch_records_kinds_for_each_subscription_it_holds(
    now, pge, client_token, authorization, django_capture_on_commit_callbacks
):
    pge.get(bulk_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch, _ = fetch_rows.fetch_open_or_create(
        url=bulk_url(), kind=Fetch.Kind.BULK, subscription_id="", now=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert fetches.fetch_run(fetch_id=fetch.pk, now=now).status == Fetch.Status.INGESTED
    # The Authorization resource had not listed the usage point: the data adds it.
    row = SubscriptionUsagePoint.objects.get()
    assert (row.authorization_id, row.usage_point_id, row.service_kind) == (
        authorization.pk,
        UPID,
        "electric",
    )
