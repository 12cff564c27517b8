"""GET /healthz reports the database and the broker."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from gascap import health
from gascap.schedules import SCHEDULES

# The test database has no schedules (GASCAP_SCHEDULES_ON_MIGRATE is off in the test settings).
MISSING = f"missing {len(SCHEDULES)}"


@pytest.mark.django_db
def test_healthz_ok(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "schedules": MISSING}


def _use_broker(url: str, options: dict) -> None:
    from gascap.celery import app

    app.conf.broker_url = url
    app.conf.broker_transport_options = options
    # Forget the cached pools (kombu keeps one per URL); closing them would poison kombu's
    # process-wide registry for every later test that publishes.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db
def test_healthz_names_a_down_broker(client, settings) -> None:
    from gascap.celery import app

    previous = (app.conf.broker_url, app.conf.broker_transport_options)
    # Nothing listens on port 1: the connection is refused at once.
    _use_broker("redis://127.0.0.1:1/0", {"socket_connect_timeout": 1})
    try:
        response = client.get("/healthz")
    finally:
        _use_broker(*previous)
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down", "schedules": MISSING}


@pytest.mark.django_db
def test_healthz_names_a_down_database(client, monkeypatch) -> None:
    class BrokenCursor:
        def __enter__(self):
            raise DatabaseError("connection refused")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: BrokenCursor())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


@pytest.mark.django_db
def test_healthz_is_get_only(client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_healthz_keeps_host_validation(client, settings) -> None:
    """The web container's health check sends an allowed Host (gascap/healthcheck.py): the
    view is not exempt from host validation."""
    settings.ALLOWED_HOSTS = ["gascap.example.org"]
    assert client.get("/healthz", HTTP_HOST="localhost").status_code == 400
    assert client.get("/healthz", HTTP_HOST="gascap.example.org").status_code == 200


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("gascap.example.org", "gascap.example.org"),
        (" gascap.example.org , other.example.org", "gascap.example.org"),
        ("*,.example.org", "example.org"),
        ("", "localhost"),
    ],
)
def test_healthcheck_probe_host_is_one_django_accepts(allowed, host) -> None:
    from django.http.request import validate_host

    from gascap.healthcheck import probe_host

    assert probe_host(allowed) == host
    if allowed:
        assert validate_host(host, [h.strip() for h in allowed.split(",")])
