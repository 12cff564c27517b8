"""Fixtures of the app API tests: keys of each scope and a client that sends them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from api.keys import api_key_create
from customers.models import SubscriptionUsagePoint
from ingest.models import UsagePoint
from ingest.readings import document_import
from tests.builders import authorization_make, customer_make
from tests.customers.conftest import (  # noqa: F401  (fixtures reused by the API tests)
    fake_pge,
    field_keys,
    pge,
    pge_http,
    sent_tasks,
)


class ApiClient:
    """Django's test client with a Bearer key on every request."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {}, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(path, body, content_type="application/json", headers=self.headers)


@pytest.fixture
def read_key(db) -> str:
    return api_key_create(name="reader", scopes=["read"], now=timezone.now())[1]


@pytest.fixture
def consent_key(db) -> str:
    return api_key_create(name="app backend", scopes=["read", "consent"], now=timezone.now())[1]


@pytest.fixture
def reader(read_key) -> ApiClient:
    return ApiClient(read_key)


@pytest.fixture
def app(consent_key) -> ApiClient:
    return ApiClient(consent_key)


# The read API's data: PG&E's real samples, two app customers and one consent without one.
ELECTRIC = "pge_smd_2019_electric_hourly_bulk_dst_fallback.xml"  # Nov 2-3 2019, hourly kWh
GAS = "pge_smd_2020_gas_daily_therm_bulk.xml"  # daily therms starting 00:00:01 local
SUMMARIES = "pge_cmd_2015_usagesummary_feed.xml"
OTHER = "pge_cmd_2016_gas_daily_therm.xml"  # a customer who did not come through the app


def consent(*, external_id: str | None, subscription_id: str, usage_points: list[str]) -> None:
    customer = customer_make(display_name="x", external_id=external_id)
    authorization = authorization_make(
        customer=customer, subscription_id=subscription_id, status="ACTIVE"
    )
    for up in usage_points:
        SubscriptionUsagePoint.objects.create(authorization=authorization, usage_point_id=up)


def point(usage_point_id: str) -> UsagePoint:
    return UsagePoint.objects.get(usage_point_id=usage_point_id)


@pytest.fixture
def data(fixture_path):
    now = timezone.now()
    for name in (ELECTRIC, GAS, SUMMARIES, OTHER):
        document_import(source=fixture_path(name), source_label=name, now=now)
    consent(
        external_id="user-1", subscription_id="4095251", usage_points=["5391320451", "7170720474"]
    )
    consent(external_id="user-2", subscription_id="1", usage_points=["1"])
    consent(external_id=None, subscription_id="86653", usage_points=["7541002993"])
