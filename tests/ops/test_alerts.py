"""Alerts: each condition mails ADMINS and POSTs the ops webhook (a local HTTP server, the
signature checked), once per condition per day, naming what to do; a failed send is retried by
the next check without mailing twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core import mail

from customers.models import Authorization, AuthorizationStatus
from gascap.pge.gate import CallKind, Priority
from gascap.pge_budget.budget import PgeBudgetGate
from ingest.models import Fetch, FetchAttempt, Notification
from ops.alerts import alerts_check, webhook_signature
from ops.models import AlertSent
from tests.builders import authorization_make, customer_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 11:00 Pacific (PDT)
SECRET = "whsec_c2VjcmV0LWZvci1vcHMtd2ViaG9vaw=="


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.received = threading.Event()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.end_headers()
            state.received.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _certificate(path, *, not_after: datetime) -> None:  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gascap client")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_after - timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def firing(settings, tmp_path, receiver):  # type: ignore[no-untyped-def]
    """Every condition true at NOW."""
    state, url = receiver
    settings.ADMINS = [("ops", "ops@example.org")]
    settings.GASCAP_OPS_WEBHOOK_URL = url
    settings.GASCAP_OPS_WEBHOOK_SECRET = SECRET
    settings.GASCAP_PGE_BUDGET_PER_DAY = 10
    cert = tmp_path / "client.pem"
    _certificate(cert, not_after=NOW + timedelta(days=12))
    settings.GASCAP_PGE_CLIENT_CERT = str(cert)

    customer = customer_make(display_name="Ada")
    lost = authorization_make(
        customer=customer,
        subscription_id="SUB-LOST",
        status=AuthorizationStatus.NEEDS_RECONSENT,
        last_error="Refresh refused by PG&E (invalid_grant)",
    )
    Authorization.objects.filter(pk=lost.pk).update(updated_at=NOW - timedelta(hours=2))
    active = authorization_make(
        customer=customer, subscription_id="SUB-OK", status=AuthorizationStatus.ACTIVE
    )
    Authorization.objects.filter(pk=active.pk).update(created_at=NOW - timedelta(days=10))
    Notification.objects.create(
        status=Notification.Status.PROCESSED,
        received_at=NOW - timedelta(hours=40),
        body=b"<x/>",
        sha256="a",
    )
    failed = Fetch.objects.create(
        url="https://pge/x",
        url_sha256="b",
        status=Fetch.Status.POISONED,
        reason="poisoned",
        error="six runs without an outcome",
        created_at=NOW - timedelta(hours=3),
    )
    FetchAttempt.objects.create(
        fetch=failed, url=failed.url, started_at=NOW, outcome=FetchAttempt.Outcome.TRANSIENT
    )
    # 80 % of the cap of 10 this PG&E day, counted by the call budget (every kind of call).
    gate = PgeBudgetGate(clock=lambda: NOW, pace=lambda: None)
    for kind in [CallKind.TOKEN_REFRESH] * 3 + [CallKind.FETCH] * 5:
        gate.before_call(kind, Priority.CONSENT)
    return state


CONDITIONS = {
    "consent_needs_reconsent",
    "work_failed",
    "notifications_silent",
    "pge_day_budget",
    "certificate_expiry",
}


def test_every_condition_mails_and_posts_once_a_day(firing) -> None:  # type: ignore[no-untyped-def]
    sent = alerts_check(now=NOW)
    assert set(sent) == CONDITIONS
    assert len(mail.outbox) == 5
    assert {m.to[0] for m in mail.outbox} == {"ops@example.org"}
    for message in mail.outbox:
        assert message.subject.startswith("[gascap] ")
        assert "What to do:" in message.body
    bodies = "\n".join(m.body for m in mail.outbox)
    assert "SUB-LOST" in bodies and "six runs without an outcome" in bodies
    assert "8 of 10 calls" in bodies
    assert any("expires in 12 day" in m.subject for m in mail.outbox)

    assert len(firing.posts) == 5
    for headers, body in firing.posts:
        expected = webhook_signature(
            secret=SECRET,
            msg_id=headers["webhook-id"],
            timestamp=int(headers["webhook-timestamp"]),
            body=body,
        )
        assert headers["webhook-signature"] == expected
        assert json.loads(body)["condition"] in CONDITIONS

    # Again the same day (the beat runs every 15 minutes): nothing new.
    assert alerts_check(now=NOW + timedelta(hours=3)) == []
    assert len(mail.outbox) == 5 and len(firing.posts) == 5
    # The next Pacific day, the conditions still true alert again.
    again = alerts_check(now=NOW + timedelta(days=1))
    assert "notifications_silent" in again and "certificate_expiry" in again
    assert AlertSent.objects.filter(condition="certificate_expiry").count() == 2


def test_failed_webhook_is_retried_without_mailing_twice(firing) -> None:  # type: ignore[no-untyped-def]
    firing.status = 500
    alerts_check(now=NOW)
    assert len(mail.outbox) == 5
    rows = AlertSent.objects.all()
    assert all(r.webhook_at is None and "500" in r.last_error for r in rows)
    firing.status = 204
    retried = alerts_check(now=NOW + timedelta(minutes=15))
    assert set(retried) == CONDITIONS
    assert len(mail.outbox) == 5  # mail went out the first time
    assert all(r.webhook_at is not None and r.last_error == "" for r in AlertSent.objects.all())


def test_quiet_system_sends_nothing(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ADMINS = [("ops", "ops@example.org")]
    settings.GASCAP_PGE_CLIENT_CERT = ""
    Notification.objects.create(
        status=Notification.Status.PROCESSED,
        received_at=NOW - timedelta(hours=2),
        body=b"",
        sha256="c",
    )
    assert alerts_check(now=NOW) == []
    assert mail.outbox == []


def test_the_check_is_scheduled() -> None:
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    call_command("ensure_schedules", verbosity=0)
    task = PeriodicTask.objects.get(task="ops.alerts_check")
    assert task.enabled and task.interval.every == 900
