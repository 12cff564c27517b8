"""Fixtures for ingest's tests: PG&E settings pointing at a mocked API base, a recorder for
published task messages (nothing reaches a broker in unit tests), authorizations with known
test tokens, synthetic ESPI feeds with obviously fake ids, and a real Celery worker subprocess
for the end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
import responses

from tests.builders import authorization_make, customer_make, pge_settings_fake
from tests.support import celery_worker_argv, process_stop, wait_until_worker_ready

API_BASE = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"
TOKEN_URL = "https://api.pge.com/datacustodian/oauth/v2/token"
NOTIFY_TOKEN = "notify-test-token-0123456789"
OLD_NOTIFY_TOKEN = "notify-test-token-previous-99"
SID = "SUBTEST0001"
UPID = "UPTEST0001"
CUSTOMER_ACCESS = "cust-access-TEST-aaaaaaaaaaaa"
CUSTOMER_REFRESH = "cust-refresh-TEST-bbbbbbbbbbbb"
CLIENT_TOKEN = "client-access-TEST-cccccccccccc"
REFRESHED_ACCESS = "cust-access-TEST-refreshed-dddd"
ALL_SECRETS = (NOTIFY_TOKEN, CUSTOMER_ACCESS, CUSTOMER_REFRESH, CLIENT_TOKEN, REFRESHED_ACCESS)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def ingest_settings(settings, tmp_path):
    pge_settings_fake(settings, tmp_path, api_base=API_BASE, token_url=TOKEN_URL)
    settings.GASCAP_PGE_THIRD_PARTY_ID = "99999"
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0
    settings.GASCAP_NOTIFY_TOKENS = [NOTIFY_TOKEN, OLD_NOTIFY_TOKEN]
    settings.GASCAP_NOTIFY_BASIC_CREDENTIALS = []
    settings.GASCAP_INGEST_BACKOFF_BASE = 1.0
    settings.GASCAP_INGEST_BACKOFF_CAP = 30.0
    settings.GASCAP_INGEST_POISON_LIMIT = 6
    return settings


@pytest.fixture(autouse=True)
def pge(request):
    """PG&E's HTTP boundary, mocked for every ingest unit test: an unregistered request fails
    as a connection error, so no unit test can reach a network. End-to-end tests talk to the
    sandbox over real mutual TLS instead."""
    if request.node.get_closest_marker("e2e"):
        yield None
        return
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@dataclass
class Published:
    """Task messages the code under test published, in order (name, args, options)."""

    messages: list[tuple[str, list[Any], dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.messages]

    def of(self, name: str) -> list[list[Any]]:
        return [args for n, args, _ in self.messages if n == name]

    def drain_after(self, call: Any, *args: Any) -> Any:
        """`call(*args)`, then `drain(on_commit=True)`: its on-commit publishing and that of
        every task drained runs, as it would after a real commit. Returns what `call` did."""
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            result = call(*args)
        self.drain(on_commit=True)
        return result

    def drain(self, *, limit: int = 200, on_commit: bool = False) -> int:
        """Run every queued ingest task in this process (countdowns ignored), until none; with
        `on_commit`, what the tasks publish after commit is run too."""
        from contextlib import nullcontext

        from django.test import TestCase

        from ingest import tasks

        by_name = {
            "ingest.notification_process": tasks.notification_process_task,
            "ingest.fetch_run": tasks.fetch_run_task,
            "ingest.subscription_request": tasks.subscription_request_task,
            "ingest.data_request_run": tasks.data_request_run_task,
        }
        ran = 0
        while self.messages and ran < limit:
            name, args, _ = self.messages.pop(0)
            if name in by_name:
                commits = (
                    TestCase.captureOnCommitCallbacks(execute=True) if on_commit else nullcontext()
                )
                with commits:
                    by_name[name].run(*args)
                ran += 1
        return ran


@pytest.fixture(autouse=True)
def published(request, monkeypatch) -> Published:
    from gascap.celery import app
    from ingest import tasks

    record = Published()
    if request.node.get_closest_marker("e2e"):
        return record  # end-to-end tests publish for real

    def recorder(name: str):
        def apply_async(args=None, kwargs=None, **options):
            record.messages.append((name, list(args or []), options))

        return apply_async

    for task in (
        tasks.notification_process_task,
        tasks.fetch_run_task,
        tasks.subscription_request_task,
        tasks.data_request_run_task,
        tasks.daily_data_request_task,
        tasks.sweep_stuck_task,
        tasks.gap_audit_task,
    ):
        monkeypatch.setattr(task, "apply_async", recorder(task.name))

    def send_task(name, args=None, kwargs=None, **options):
        record.messages.append((name, list(args or []), options))

    monkeypatch.setattr(app, "send_task", send_task)
    return record


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def authorization(db):
    return authorization_make(
        customer=customer_make(display_name="Test Customer A", email="a@example.test"),
        subscription_id=SID,
        scope="FB=1_3_4_5_13_14_39;IntervalDuration=3600;HistoryLength=2592000;",
        scope_params={"HistoryLength": ["2592000"], "IntervalDuration": ["3600"]},
        access_token=CUSTOMER_ACCESS,
        refresh_token=CUSTOMER_REFRESH,
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def client_token(db):
    from customers.models import ClientToken

    row, _ = ClientToken.objects.get_or_create(pk=ClientToken.SINGLETON_PK)
    row.token_write("access_token_encrypted", CLIENT_TOKEN)
    row.access_token_expires_at = datetime(2099, 1, 1, tzinfo=UTC)
    row.last_refreshed_at = datetime(2026, 1, 1, tzinfo=UTC)
    row.save()
    return row


def batchlist(*urls: str) -> bytes:
    # Escaped as XML text: a URL with two query parameters carries `&`.
    items = "".join(f"<ns0:resources>{escape(u)}</ns0:resources>" for u in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<ns0:BatchList xmlns:ns0="http://naesb.org/espi">{items}</ns0:BatchList>'
    ).encode()


SUBSCRIPTION_CORRELATION = "7c0f3b1e-0000-4000-8000-00000000c0de"


def subscription_url(
    sid: str = SID, suffix: str = "", correlation: str | None = SUBSCRIPTION_CORRELATION
) -> str:
    """`Batch/Subscription/{sid}{suffix}` as PG&E's BatchList names it: with a correlationID
    (docs/pge-protocol.md: only such URLs are notified data). `correlation=None` gives the
    bare URL, which would *start* a new request at PG&E."""
    url = f"{API_BASE}Batch/Subscription/{sid}{suffix}"
    return f"{url}?correlationID={correlation}" if correlation else url


def bulk_url(correlation: str = "5e1f7a2c-0000-4000-8000-00000000abcd") -> str:
    return f"{API_BASE}Batch/Bulk/99999?correlationID={correlation}"


READING_TYPE_HREF = f"{API_BASE}ReadingType/TESTRT1"


def _entry(self_href: str, up: str, content: str, related: tuple[str, ...] = ()) -> str:
    links = f'<link href="{up}" rel="up"/><link href="{self_href}" rel="self"/>'
    links += "".join(f'<link href="{r}" rel="related"/>' for r in related)
    return (
        f"<entry><id>urn:uuid:{abs(hash(self_href)) % 10**12:012d}</id>{links}"
        f"<title>t</title><published>2026-03-09T00:00:00Z</published>"
        f"<updated>2026-03-09T00:00:00Z</updated><content>{content}</content></entry>"
    )


def reading_type_entry(href: str = READING_TYPE_HREF) -> str:
    return _entry(
        href,
        f"{API_BASE}ReadingType",
        '<ReadingType xmlns="http://naesb.org/espi"><accumulationBehaviour>4'
        "</accumulationBehaviour><commodity>1</commodity><flowDirection>1</flowDirection>"
        "<intervalLength>3600</intervalLength><kind>12</kind>"
        "<powerOfTenMultiplier>-3</powerOfTenMultiplier><uom>72</uom></ReadingType>",
    )


def espi_feed(
    *,
    start: int = 1773039600,  # 2026-03-09 00:00 Pacific (PDT), in UTC epoch seconds
    values: list[int] | None = None,
    sid: str = SID,
    upid: str = UPID,
    with_reading_type: bool = True,
) -> bytes:
    """A small PG&E-shaped feed: one usage point, one hourly series, one block."""
    values = values if values is not None else [1000 + i for i in range(24)]
    up = f"{API_BASE}Subscription/{sid}/UsagePoint/{upid}"
    mr = f"{up}/MeterReading/MRTEST1"
    block = f"{mr}/IntervalBlock/{start}"
    readings = "".join(
        f"<IntervalReading><timePeriod><duration>3600</duration><start>{start + 3600 * i}"
        f"</start></timePeriod><value>{v}</value></IntervalReading>"
        for i, v in enumerate(values)
    )
    entries = [
        _entry(
            up,
            f"{API_BASE}Subscription/{sid}/UsagePoint",
            '<UsagePoint xmlns="http://naesb.org/espi"><ServiceCategory><kind>0</kind>'
            "</ServiceCategory></UsagePoint>",
            (f"{up}/MeterReading",),
        ),
        _entry(
            mr,
            f"{up}/MeterReading",
            '<MeterReading xmlns="http://naesb.org/espi"/>',
            (f"{mr}/IntervalBlock", READING_TYPE_HREF),
        ),
        _entry(
            block,
            f"{mr}/IntervalBlock",
            f'<IntervalBlock xmlns="http://naesb.org/espi"><interval><duration>'
            f"{3600 * len(values)}</duration><start>{start}</start></interval>"
            f"{readings}</IntervalBlock>",
        ),
    ]
    if with_reading_type:
        entries.insert(1, reading_type_entry())
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:uuid:feed</id><title>test feed</title>{''.join(entries)}</feed>"
    ).encode()


def reading_type_feed() -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:uuid:rt</id>{reading_type_entry()}</feed>"
    ).encode()


class Accepted(list):
    """The peer addresses a listener accepted. `settled()` returns them once every connection
    made before the call has been accepted: it connects a probe of its own and waits until the
    listener accepts it (a listening socket's queue is first in, first out), instead of
    sleeping and hoping a late connection would have shown by then."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self._lock = threading.Lock()
        self._probes: dict[object, threading.Event] = {}

    def record(self, addr: object) -> None:
        with self._lock:
            probe = self._probes.pop(addr, None)
            if probe is None:
                self.append(addr)
                return
        probe.set()

    def settled(self, *, timeout: float = 5.0) -> list[object]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as probe:
            addr = probe.getsockname()
            accepted = threading.Event()
            with self._lock:
                if addr in self:  # accepted before it could be registered
                    self.remove(addr)
                    accepted.set()
                else:
                    self._probes[addr] = accepted
            assert accepted.wait(timeout), "the listener did not accept its own probe"
        return list(self)


@pytest.fixture
def attacker_listener():
    """A loopback TCP listener that must receive zero connections: (port, Accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    connections = Accepted(server.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except (TimeoutError, OSError):
                continue
            connections.record(addr)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    stop.set()
    thread.join(timeout=2)
    server.close()


# --- A real Celery worker subprocess (end-to-end tests) -------------------------------------


@pytest.fixture
def celery_worker_process(tmp_path):
    """Start `celery -A gascap worker` on the three queues with this process's environment
    (DATABASE_URL / REDIS_URL / GASCAP_* overrides); yield a function to pass extra env;
    stop it by PID."""
    procs: list[subprocess.Popen] = []

    def start(extra_env: dict[str, str]) -> subprocess.Popen:
        env = {**os.environ, **extra_env}
        env.setdefault("DJANGO_SETTINGS_MODULE", "gascap.settings.test")
        log = open(tmp_path / "worker.log", "wb")
        proc = subprocess.Popen(
            celery_worker_argv(name="e2e"),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        wait_until_worker_ready(proc, tmp_path / "worker.log")
        return proc

    yield start
    for proc in procs:
        process_stop(proc, timeout=15)


def worker_log(tmp_path: Path) -> str:
    path = tmp_path / "worker.log"
    return path.read_text(errors="replace") if path.exists() else ""


def since(now: datetime, **delta: float) -> datetime:
    return now - timedelta(**delta)
