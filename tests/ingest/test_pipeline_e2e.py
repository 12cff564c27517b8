"""End to end over real processes: the sandbox (a local PG&E over real mutual TLS) notifies a
web subprocess; a real Celery worker subprocess over Redis fetches and stores the readings in
PostgreSQL. Exactly once in effect: duplicates and replays write nothing; a fault burst
(503s, 429, an expired token) still ends with every reading stored."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.utils import timezone

from ingest import data_requests
from ingest.models import Fetch, FetchAttempt, IntervalReading, Notification
from tests.ingest.conftest import NOTIFY_TOKEN, REPO, worker_log
from tests.support import (
    free_port,
    loopback_session,
    pipeline_settled,
    process_stop,
    redis_url_with_db,
    sandbox_client_env,
    sandbox_consent,
    subprocess_database_url,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

# A Redis database of its own, so no other worker on the same server takes these messages.
E2E_REDIS_DB = 11


_http = loopback_session
_free_port = free_port
_database_url = subprocess_database_url


def _redis_url() -> str:
    return redis_url_with_db(E2E_REDIS_DB)


@dataclass
class Stack:
    sandbox: object
    env: dict[str, str]
    web_url: str
    sid: str
    tmp_path: Path

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(
            f"timed out; fetches={list(Fetch.objects.values('status', 'reason', 'attempts'))}\n"
            f"worker log tail:\n{worker_log(self.tmp_path)[-4000:]}"
        )


@pytest.fixture
def stack(tmp_path, settings, celery_worker_process) -> Iterator[Stack]:
    import redis

    from sandbox.certs import certs_ensure
    from sandbox.config import sandbox_config
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState

    redis.Redis.from_url(_redis_url()).flushdb()
    certs, _ = certs_ensure(directory=tmp_path / "certs")
    web_port = _free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url=f"{web_url}/pge/notify/{NOTIFY_TOKEN}/",
        notify_delay=1.0,  # time to arm faults between the 202 and the fetch
        redirect_uris=("http://localhost:8000/consent/callback/",),
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        bulk_id="99999",
    )
    sandbox = SandboxServer(SandboxState(), config).start()
    key = Fernet.generate_key().decode()
    env = {
        "DJANGO_SETTINGS_MODULE": "gascap.settings.test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": _redis_url(),
        "GASCAP_VAR_DIR": str(tmp_path / "var"),
        "GASCAP_FIELD_ENCRYPTION_KEYS": key,
        **sandbox_client_env(sandbox),
        "GASCAP_PGE_CLIENT_ID": "sandbox-client",
        "GASCAP_PGE_CLIENT_SECRET": "sandbox-secret",
        "GASCAP_PGE_THIRD_PARTY_ID": "99999",
        "GASCAP_NOTIFY_TOKEN": NOTIFY_TOKEN,
        "GASCAP_PGE_RATE_LIMIT_PER_SECOND": "5",
        "GASCAP_INGEST_BACKOFF_BASE": "0.2",
        "GASCAP_INGEST_BACKOFF_CAP": "3",
        "GASCAP_DB_CONN_MAX_AGE": "0",
    }
    # This process talks to the same sandbox (to ask for data) with the same key.
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [key]
    settings.GASCAP_PGE_API_BASE = env["GASCAP_PGE_API_BASE"]
    settings.GASCAP_PGE_TOKEN_URL = env["GASCAP_PGE_TOKEN_URL"]
    settings.GASCAP_PGE_CA_BUNDLE = env["GASCAP_PGE_CA_BUNDLE"]
    settings.GASCAP_PGE_CLIENT_CERT = env["GASCAP_PGE_CLIENT_CERT"]
    settings.GASCAP_PGE_CLIENT_KEY = env["GASCAP_PGE_CLIENT_KEY"]
    settings.GASCAP_PGE_CLIENT_ID = "sandbox-client"
    settings.GASCAP_PGE_CLIENT_SECRET = "sandbox-secret"

    web_log = open(tmp_path / "web.log", "wb")
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=web_log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _http().get(f"{web_url}/healthz", timeout=1)
                break
            except requests.ConnectionError as exc:
                if time.monotonic() > deadline or web.poll() is not None:
                    log = (tmp_path / "web.log").read_text()
                    raise RuntimeError(f"web did not answer ({exc}):\n{log}") from None
                time.sleep(0.2)
        celery_worker_process(env)

        sid, _access, _refresh = sandbox_consent(
            sandbox, customer_key="electric", display_name="Sandbox electric (test)"
        )
        yield Stack(sandbox=sandbox, env=env, web_url=web_url, sid=sid, tmp_path=tmp_path)
    finally:
        process_stop(web, timeout=10)
        web_log.close()
        sandbox.stop()


def _ask(stack: Stack, *, days_back: int, days: int) -> None:
    from customers.models import Authorization

    now = timezone.now()
    start = now - timedelta(days=days_back)
    report = data_requests.subscription_data_request(
        authorization_id=Authorization.objects.get(subscription_id=stack.sid).pk,
        now=now,
        start=start,
        end=start + timedelta(days=days),
    )
    assert report.statuses == [202]


def _fetches(stack: Stack):  # type: ignore[no-untyped-def]
    """This test's fetches: the URLs of this test's sandbox. A row a previous test's worker
    wrote while shutting down (after that test's flush) names another sandbox port and must
    not make this test think its own work has settled."""
    return Fetch.objects.filter(url__startswith=stack.sandbox.api_base)


def _settled(stack: Stack) -> bool:
    return pipeline_settled(_fetches(stack))


def _marker_processed(stack: Stack) -> None:
    """Wait until a marker notification sent now has been processed: one naming only a
    placeholder (all-zero correlation) URL, which is PROCESSED with no fetch. It queues behind
    anything published before it on the same queue, and the single solo worker runs tasks one
    after the other, so once it is processed, whatever came before it has been too."""
    from tests.ingest.conftest import batchlist

    placeholder = f"{stack.sandbox.api_base}Batch/Subscription/{stack.sid}?correlationID=" + (
        "00000000-0000-0000-0000-000000000000"
    )
    body = batchlist(placeholder)
    sent = _http().post(f"{stack.web_url}/pge/notify/{NOTIFY_TOKEN}/", data=body, timeout=5)
    assert sent.status_code == 200
    stack.wait_for(
        lambda: Notification.objects.filter(
            sha256=hashlib.sha256(body).hexdigest(), status=Notification.Status.PROCESSED
        ).exists()
    )


def test_notification_to_readings_exactly_once(stack):
    _ask(stack, days_back=3, days=2)
    stack.wait_for(lambda: _settled(stack))
    fetch = _fetches(stack).get()
    assert fetch.status == Fetch.Status.INGESTED, (fetch.reason, fetch.error)
    assert fetch.kind == Fetch.Kind.SUBSCRIPTION
    readings = IntervalReading.objects.count()
    assert readings > 0
    assert fetch.readings_new == readings
    assert Notification.objects.get().status == Notification.Status.PROCESSED

    # The same notification again (PG&E re-sends): recorded, no new work, nothing written.
    body = bytes(Notification.objects.get().body)
    again = _http().post(f"{stack.web_url}/pge/notify/{NOTIFY_TOKEN}/", data=body, timeout=5)
    assert again.status_code == 200
    assert Notification.objects.filter(status=Notification.Status.DUPLICATE).count() == 1
    _marker_processed(stack)
    assert _fetches(stack).count() == 1
    assert IntervalReading.objects.count() == readings

    # A wrong token is 404 and writes nothing.
    wrong = _http().post(f"{stack.web_url}/pge/notify/guess/", data=body, timeout=5)
    assert wrong.status_code == 404
    assert Notification.objects.count() == 3  # the first, its duplicate, the marker


def test_fault_burst_ends_with_every_reading_stored(stack):
    from sandbox.faults import Fault

    _ask(stack, days_back=3, days=2)
    stack.wait_for(lambda: _settled(stack))
    first = _fetches(stack).get()
    assert first.status == Fetch.Status.INGESTED, (first.reason, first.error)
    expected = IntervalReading.objects.count()
    assert expected > 0 and first.readings_new == expected
    IntervalReading.objects.all().delete()

    # Armed right after the 202, before the notification (1 s later) makes the worker fetch.
    _ask(stack, days_back=3, days=2)
    state = stack.sandbox.state
    state.fault_add(Fault(kind="http_503", subscription_id=stack.sid, times=3))
    state.fault_add(Fault(kind="rate_limit", subscription_id=stack.sid, times=1, seconds=1))
    state.fault_add(Fault(kind="expired_token", subscription_id=stack.sid, times=1))
    stack.wait_for(lambda: _fetches(stack).count() == 2 and _settled(stack), timeout=90)
    second = _fetches(stack).order_by("-id").first()
    assert second.status == Fetch.Status.INGESTED, (second.reason, second.error)
    codes = list(FetchAttempt.objects.filter(fetch=second).values_list("status_code", flat=True))
    assert codes.count(503) == 3
    assert 429 in codes
    assert 403 in codes
    assert codes[-1] == 200
    assert IntervalReading.objects.count() == expected


def test_hostile_redirect_sends_nothing_and_stores_nothing(stack, attacker_listener):
    from sandbox.faults import Fault

    port, connections = attacker_listener

    _ask(stack, days_back=3, days=1)
    stack.sandbox.state.fault_add(
        Fault(
            kind="redirect",
            subscription_id=stack.sid,
            times=1,
            location=f"http://127.0.0.1:{port}/steal",
        )
    )
    stack.wait_for(lambda: _settled(stack))
    fetch = _fetches(stack).get()
    assert (fetch.status, fetch.reason) == (Fetch.Status.FAILED, "unexpected_redirect")
    assert fetch.attempt_rows.count() == 1
    assert IntervalReading.objects.count() == 0
    assert connections.settled() == []


def test_a_bare_batch_url_is_skipped_and_pge_is_never_asked(stack):
    """Issue 10, part 4, through real processes: a BatchList naming the subscription's bare Batch
    URL next to a correlated one. The correlated data is fetched and stored; the bare URL is
    recorded SKIPPED `no_correlation` and never reaches the sandbox (a GET there would start a
    new request at PG&E, docs/pge-protocol.md "Data APIs")."""
    from tests.ingest.conftest import batchlist

    start = int((timezone.now() - timedelta(days=3)).timestamp())
    start -= start % 86400
    correlation = stack.sandbox.state.correlation_create(
        kind="subscription", target=stack.sid, published_min=start, published_max=start + 86400
    )
    batch = f"{stack.sandbox.api_base}Batch/Subscription/{stack.sid}"
    body = batchlist(batch, f"{batch}?correlationID={correlation}")
    answer = _http().post(f"{stack.web_url}/pge/notify/{NOTIFY_TOKEN}/", data=body, timeout=5)
    assert answer.status_code == 200
    stack.wait_for(lambda: _settled(stack))
    rows = {f.url: f for f in _fetches(stack)}
    assert (rows[batch].status, rows[batch].reason) == (Fetch.Status.SKIPPED, "no_correlation")
    fetched = rows[f"{batch}?correlationID={correlation}"]
    assert fetched.status == Fetch.Status.INGESTED, (fetched.reason, fetched.error)
    assert IntervalReading.objects.count() > 0
    batch_requests = [
        r for r in stack.sandbox.state.requests_list() if "/Batch/Subscription/" in r.path
    ]
    assert [r.query.get("correlationID") for r in batch_requests] == [[correlation]]
    assert stack.sandbox.app.notifier.pending() == 0


def test_a_403_on_a_single_resource_keeps_the_consent_a_403_on_its_batch_ends_it(stack):
    """Issue 10, part 4, through real processes: the sandbox answers 403 to the token twice
    (before and after the worker's refresh). On a single resource a notification named, the
    fetch fails `forbidden_resource` and the consent stays ACTIVE; on the subscription's own
    Batch resource the consent moves to NEEDS_RECONSENT."""
    from customers.models import Authorization
    from sandbox.demo import customer_by_subscription
    from sandbox.faults import Fault
    from tests.ingest.conftest import batchlist

    upid = customer_by_subscription(stack.sid).usage_points[0].usage_point_id
    single = f"{stack.sandbox.api_base}Subscription/{stack.sid}/UsagePoint/{upid}"
    stack.sandbox.state.fault_add(Fault(kind="expired_token", subscription_id=stack.sid, times=2))
    answer = _http().post(
        f"{stack.web_url}/pge/notify/{NOTIFY_TOKEN}/", data=batchlist(single), timeout=5
    )
    assert answer.status_code == 200
    stack.wait_for(lambda: _settled(stack))
    fetch = _fetches(stack).get()
    assert (fetch.status, fetch.reason) == (Fetch.Status.FAILED, "forbidden_resource")
    assert list(fetch.attempt_rows.values_list("status_code", flat=True)) == [403, 403]
    consent = Authorization.objects.get(subscription_id=stack.sid)
    assert consent.status == Authorization.Status.ACTIVE

    correlation = stack.sandbox.state.correlation_create(
        kind="subscription", target=stack.sid, published_min=None, published_max=None
    )
    batch = f"{stack.sandbox.api_base}Batch/Subscription/{stack.sid}?correlationID={correlation}"
    stack.sandbox.state.fault_add(Fault(kind="expired_token", subscription_id=stack.sid, times=2))
    answer = _http().post(
        f"{stack.web_url}/pge/notify/{NOTIFY_TOKEN}/", data=batchlist(batch), timeout=5
    )
    assert answer.status_code == 200
    stack.wait_for(lambda: _fetches(stack).count() == 2 and _settled(stack))
    second = _fetches(stack).get(url=batch)
    assert (second.status, second.reason) == (Fetch.Status.FAILED, "forbidden")
    consent.refresh_from_db()
    assert consent.status == Authorization.Status.NEEDS_RECONSENT
