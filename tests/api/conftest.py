"""Fixtures of the app API tests: keys of each scope and a client that sends them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from api.keys import api_key_create
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
