"""GET /healthz reports the database and the broker."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from gascap import health


@pytest.mark.django_db
def test_healthz_ok(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_names_a_down_broker(client, settings) -> None:
    from gascap.celery import app

    previous = app.conf.broker_url
    # Nothing listens on port 1: the connection is refused at once.
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    app.conf.broker_transport_options = {"socket_connect_timeout": 1}
    try:
        app.pool.force_close_all()
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = previous
        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        app.pool.force_close_all()
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down"}


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
