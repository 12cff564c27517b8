"""Fixtures for the reliability tests: real processes and real faults.

- `db_proxy` / `redis_proxy`: a FaultProxy in front of the shared PostgreSQL / Redis, so one
  subprocess can lose its service while the rest of the suite keeps it.
- `procs`: gunicorn web and Celery worker subprocesses with an explicit environment (the test
  database pytest-django made, Redis DB `REL_REDIS_DB`), stopped by PID, never by name.
- `stack`: the sandbox (a local PG&E over real mutual TLS, in this process) with one consented
  customer, plus the environment a subprocess needs to fetch from it.

Every test here uses `transactional_db`: the subprocesses must see committed rows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from bench.chaos.services import LocalRedis, first_free
from tests.reliability.faultproxy import FaultProxy
from tests.support import (  # noqa: F401 (batchlist, wait_for: re-exported for the tests here)
    REPO,
    Procs,
    batchlist,
    celery_worker_argv,
    free_port,
    loopback_session,
    redis_url_with_db,
    sandbox_client_env,
    sandbox_consent,
    sandbox_start_quiet,
    subprocess_database_url,
    wait_for,
    wait_until_worker_ready,
)

# Redis database of its own: no other engineer's worker takes these messages.
REL_REDIS_DB = 5
NOTIFY_TOKEN = "rel-notify-path-token-4c1f9e"
# Distinctive so a leak is unambiguous in a scan (test 28/53); obviously not real.
CLIENT_ID = "rel-client-id"
CLIENT_SECRET = "rel-client-secret-TESTONLY-7d3b0a"
BULK_ID = "99999"


http = loopback_session
database_url = subprocess_database_url


def redis_url() -> str:
    return redis_url_with_db(REL_REDIS_DB)


def readings_checksum() -> tuple[int, str]:
    """(count, sha256) over every stored reading, keyed by series href so it compares runs."""
    from ingest.models import IntervalReading

    digest = hashlib.sha256()
    count = 0
    rows = IntervalReading.objects.order_by("meter_reading__href", "start", "duration")
    for href, start, duration, value in rows.values_list(
        "meter_reading__href", "start", "duration", "value"
    ).iterator():
        digest.update(f"{href}|{start.isoformat()}|{duration}|{value}\n".encode())
        count += 1
    return count, digest.hexdigest()


def _publish_to(broker_url: str) -> None:
    """Point this process's Celery producer at `broker_url` (dropping pooled connections)."""
    from gascap.celery import app

    app.conf.broker_url = broker_url
    # Forget the app's cached pools: kombu keeps one per broker URL, so the next publish
    # picks (or builds) the pool of the new URL. Closing them instead would poison kombu's
    # process-wide registry ("Acquire on closed pool") for the rest of the suite.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def redis_db() -> Iterator[object]:
    """Redis DB `REL_REDIS_DB`, emptied, and this process publishing to it: the worker
    subprocesses consume there, whatever database REDIS_URL names (CI uses 0)."""
    import redis

    client = redis.Redis.from_url(redis_url())
    client.flushdb()
    previous = django_settings.CELERY_BROKER_URL
    _publish_to(redis_url())
    try:
        yield client
    finally:
        _publish_to(previous)
        client.flushdb()
        client.close()


def _target(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@pytest.fixture
def db_proxy() -> Iterator[FaultProxy]:
    db = django_settings.DATABASES["default"]
    proxy = FaultProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def redis_proxy() -> Iterator[FaultProxy]:
    proxy = FaultProxy(*_target(redis_url(), 6379)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:
    running = Procs(tmp_path)
    yield running
    running.stop_all()


def base_env(tmp_path: Path, key: str) -> dict[str, str]:
    """What every subprocess gets: the test database, Redis DB 5, fresh connections per
    request (so a proxied outage is met at connect time), a private var/ dir."""
    return {
        "DJANGO_SETTINGS_MODULE": "gascap.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "GASCAP_VAR_DIR": str(tmp_path / "var"),
        "GASCAP_FIELD_ENCRYPTION_KEYS": key,
        "GASCAP_NOTIFY_TOKEN": NOTIFY_TOKEN,
        "GASCAP_PGE_CLIENT_ID": CLIENT_ID,
        "GASCAP_PGE_CLIENT_SECRET": CLIENT_SECRET,
        "GASCAP_PGE_THIRD_PARTY_ID": BULK_ID,
        "GASCAP_PGE_RATE_LIMIT_PER_SECOND": "0",
        "GASCAP_INGEST_BACKOFF_BASE": "0.2",
        "GASCAP_INGEST_BACKOFF_CAP": "5",
    }


@dataclass
class Stack:
    sandbox: object
    env: dict[str, str]
    sid: str
    access_token: str
    refresh_token: str

    def subscription_url(self, *, days_back: int, days: int = 1) -> str:
        """A Batch/Subscription resource URL as PG&E's BatchList names it, for a fresh
        correlation over `days` days starting `days_back` days ago (whole Pacific days)."""
        from django.utils import timezone

        start = int((timezone.now() - timedelta(days=days_back)).timestamp())
        start -= start % 86400
        correlation = self.sandbox.state.correlation_create(
            kind="subscription",
            target=self.sid,
            published_min=start,
            published_max=start + 86400 * days,
        )
        return f"{self.sandbox.api_base}Batch/Subscription/{self.sid}?correlationID={correlation}"

    def subscription_fetch_new(self, *, days_back: int) -> int:
        """A new PENDING fetch row for a fresh correlation of this subscription (not yet
        queued): what processing a notification that names it would create."""
        from django.utils import timezone

        from ingest.fetch_rows import fetch_open_or_create
        from ingest.models import Fetch

        fetch, created = fetch_open_or_create(
            url=self.subscription_url(days_back=days_back),
            kind=Fetch.Kind.SUBSCRIPTION,
            subscription_id=self.sid,
            now=timezone.now(),
        )
        assert created
        return fetch.pk

    def data_requests(self) -> list[object]:
        """The sandbox's recorded requests to the resource API (not token, not control)."""
        return [r for r in self.sandbox.state.requests_list() if "/GreenButtonConnect/" in r.path]


@pytest.fixture
def stack(tmp_path, settings, transactional_db, redis_db) -> Iterator[Stack]:
    # These tests deliver BatchLists themselves.
    sandbox = sandbox_start_quiet(
        tmp_path / "certs", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, bulk_id=BULK_ID
    )
    key = Fernet.generate_key().decode()
    env = {
        **base_env(tmp_path, key),
        **sandbox_client_env(sandbox),
    }
    # This process may fetch from the same sandbox (golden runs) with the same key.
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [key]
    settings.GASCAP_PGE_API_BASE = env["GASCAP_PGE_API_BASE"]
    settings.GASCAP_PGE_TOKEN_URL = env["GASCAP_PGE_TOKEN_URL"]
    settings.GASCAP_PGE_CA_BUNDLE = env["GASCAP_PGE_CA_BUNDLE"]
    settings.GASCAP_PGE_CLIENT_CERT = env["GASCAP_PGE_CLIENT_CERT"]
    settings.GASCAP_PGE_CLIENT_KEY = env["GASCAP_PGE_CLIENT_KEY"]
    settings.GASCAP_PGE_CLIENT_ID = CLIENT_ID
    settings.GASCAP_PGE_CLIENT_SECRET = CLIENT_SECRET
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0
    settings.GASCAP_NOTIFY_TOKENS = [NOTIFY_TOKEN]

    sid, access, refresh = sandbox_consent(
        sandbox, customer_key="electric", display_name="Reliability test customer"
    )
    try:
        yield Stack(sandbox=sandbox, env=env, sid=sid, access_token=access, refresh_token=refresh)
    finally:
        sandbox.stop()


# --- Worker death and broker restarts (issue 17) -------------------------------------------
# Short periods so a test sees two sweeps in seconds; the order the system check wants
# (interval * 2 <= stale < period) is kept.
HEARTBEAT_INTERVAL = 0.3
HEARTBEAT_STALE = 2.0
SWEEP_PERIOD = 4.0


def heartbeat_env() -> dict[str, str]:
    return {
        "GASCAP_WORKER_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
        "GASCAP_WORKER_HEARTBEAT_STALE": str(HEARTBEAT_STALE),
        "GASCAP_INGEST_SWEEP_PERIOD": str(int(SWEEP_PERIOD)),
    }


class Sweeper:
    """What beat does in production: `stuck_sweep` every `period` seconds, in a thread of this
    process (its own database connection), publishing to the broker this process uses."""

    def __init__(self, period: float, *, age_seconds: int | None = None) -> None:
        import threading

        self.period = period
        self.age_seconds = age_seconds
        self.reports: list[tuple[float, object]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-sweeper", daemon=True)

    def _run(self) -> None:
        from django.db import connection
        from django.utils import timezone

        from ingest.sweeper import stuck_sweep

        try:
            while not self._stop.wait(self.period):
                try:
                    report = stuck_sweep(now=timezone.now(), age_seconds=self.age_seconds)
                    self.reports.append((time.monotonic(), report))
                except Exception as exc:  # a sweep failing is part of what tests look at
                    self.errors.append(exc)
                    connection.close()
        finally:
            connection.close()

    def taken_over_at(self) -> float | None:
        """Monotonic time of the first sweep that took a row over from a dead runner."""
        for at, report in self.reports:
            if report.taken_over:  # type: ignore[attr-defined]
                return at
        return None

    def __enter__(self) -> Sweeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[LocalRedis]:
    """A redis-server of this test's own (loopback, a port in 6600-6699, AOF as in
    docker-compose.yml: the chaos run's `LocalRedis`), stopped and started by its PID, never
    by name."""
    try:
        port = first_free(range(6600, 6700))
    except RuntimeError:  # pragma: no cover
        pytest.skip("no free port in 6600-6699 for a private redis-server")
    server = LocalRedis(root=tmp_path / "redis", port=port)
    server.start()
    previous = django_settings.CELERY_BROKER_URL
    _publish_to(server.url)
    try:
        yield server
    finally:
        _publish_to(previous)
        server.kill9()
