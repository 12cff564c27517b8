"""schemathesis against the OpenAPI document: every operation, fed with generated valid and
invalid input, with a full key, over data imported from real PG&E samples. Every answer must
match the document (status codes, media types, bodies), none may be a server error, and the
`ignored_auth` check proves each operation refuses a request without a valid key.

The WSGI app runs in the test's thread, so it sees the test database and its rows. Auth
failures with a key that lacks a scope are checked per operation below.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from api.keys import api_key_create

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def full_key(db) -> str:
    return api_key_create(name="schemathesis", scopes=["read", "consent"], now=timezone.now())[1]


@pytest.fixture
def keep_connection():
    """As Django's test client does: the WSGI app must not close the test's database
    connection at the start or end of each request (PostgreSQL with CONN_MAX_AGE=0 would)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def origins(settings):
    settings.GASCAP_APP_RETURN_ORIGINS = ["http://localhost:3000"]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_conforms_to_the_document(case, data, full_key, origins, keep_connection):
    # Rules a schema cannot express answer 422 to schema-valid input by design: a return_url
    # off the configured allow-list, `end` before `start`, a range or page span too long, a
    # cursor this server did not make. Every other check (server errors, undocumented status
    # codes and media types, response bodies, negative data, ignored auth) applies.
    excluded = [positive_data_acceptance]
    case.call_and_validate(
        headers={"Authorization": f"Bearer {full_key}"}, excluded_checks=excluded
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "needs"),
    [
        ("POST", "/api/v1/consent-sessions", "consent"),
        ("GET", "/api/v1/customers/user-1", "read"),
        ("GET", "/api/v1/usage-points/1", "read"),
        ("GET", "/api/v1/usage-points/1/readings?start=2019-11-01&end=2019-11-02", "read"),
        (
            "GET",
            "/api/v1/usage-points/1/totals?interval=day&start=2019-11-01&end=2019-11-02",
            "read",
        ),
        ("GET", "/api/v1/usage-points/1/bills", "read"),
        ("GET", "/api/v1/usage-points/1/export", "read"),
    ],
)
def test_every_operation_refuses_a_key_without_its_scope(client, method, path, needs):
    other = "consent" if needs == "read" else "read"
    key = api_key_create(name="narrow", scopes=[other], now=timezone.now())[1]
    headers = {"Authorization": f"Bearer {key}"}
    if method == "POST":
        response = client.post(path, {}, content_type="application/json", headers=headers)
    else:
        response = client.get(path, headers=headers)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    response = client.get(path) if method == "GET" else client.post(path)
    assert response.status_code == 401
