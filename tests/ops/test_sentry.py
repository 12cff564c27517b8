"""Sentry: an exception that carries a token, a code, a client secret, a notify token or a
Fernet key reaches the (local, capturing) transport with each of them replaced."""

from __future__ import annotations

import json
import logging

import pytest
import sentry_sdk
from django.test import override_settings
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from ops.sentry import FILTERED, scrub_event, sentry_init

FERNET_KEY = "q0sI4bSsGcQxTQ0n2W6Ah8fVbJrD1m8b0Cz9n0Vt5aM="
ACCESS = "ACCESS-TOKEN-b9f1c2d3e4"
REFRESH = "REFRESH-TOKEN-77aa88bb99"
CODE = "AUTHCODE-5f5f5f5f"
CLIENT_SECRET = "client-secret-value-0123"
NOTIFY = "notify-token-secret-xyz"


class CapturingTransport(Transport):
    """Keeps every envelope in memory: nothing leaves the machine."""

    captured: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        CapturingTransport.captured.append(envelope.serialize())


@pytest.fixture
def sentry():  # type: ignore[no-untyped-def]
    CapturingTransport.captured = []
    with override_settings(
        GASCAP_PGE_CLIENT_SECRET=CLIENT_SECRET,
        GASCAP_NOTIFY_TOKENS=[NOTIFY],
        GASCAP_FIELD_ENCRYPTION_KEYS=[FERNET_KEY],
    ):
        sentry_init(
            dsn="http://public@127.0.0.1:9/1",
            environment="test",
            transport=CapturingTransport,
            default_integrations=False,
        )
        try:
            yield CapturingTransport.captured
        finally:
            sentry_sdk.flush()
            sentry_sdk.get_client().close()
            sentry_sdk.init()  # no DSN: reporting off again


def _token_refresh_that_fails(access_token: str, refresh_token: str) -> None:
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/xml"}
    url = f"https://localhost/callback/?code={CODE}&state=abc"
    secret = CLIENT_SECRET
    raise RuntimeError(
        f"PG&E refused {url} with {headers} secret={secret} notify={NOTIFY} key={FERNET_KEY} "
        f"refresh={refresh_token}"
    )


def test_exception_carrying_secrets_is_scrubbed_before_it_leaves(sentry) -> None:  # type: ignore[no-untyped-def]
    logging.getLogger("customers").warning("token call to /token?code=%s", CODE)  # breadcrumb
    try:
        _token_refresh_that_fails(ACCESS, REFRESH)
    except RuntimeError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush()
    assert sentry, "the event reached the capturing transport"
    sent = b"".join(sentry).decode()
    assert "RuntimeError" in sent and "PG&E refused" in sent  # the event is still useful
    for secret in (ACCESS, REFRESH, CODE, CLIENT_SECRET, NOTIFY, FERNET_KEY):
        assert secret not in sent, secret
    assert FILTERED in sent
    # The frame's locals are kept but their secret values are not.
    event = next(json.loads(line) for line in sent.splitlines() if '"exception"' in line)
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    local_vars = frames[-1]["vars"]
    assert local_vars["access_token"] == FILTERED
    assert local_vars["refresh_token"] == FILTERED
    assert local_vars["secret"] == FILTERED


def test_scrubber_names_and_patterns() -> None:
    event = {
        "request": {
            "headers": [["Authorization", "Basic dXNlcjpwYXNz"], ["Accept", "text/xml"]],
            "query_string": f"code={CODE}&x=1",
            "url": f"https://h/pge/notify/{NOTIFY}/",
        },
        "extra": {"access_token_encrypted": "gAAAAAB...", "count": 3, "client_secret": "s3cr3t!"},
        "message": f"Bearer {ACCESS}",
    }
    with override_settings(GASCAP_NOTIFY_TOKENS=[NOTIFY]):
        out = scrub_event(event)
    assert out["request"]["headers"] == [["Authorization", FILTERED], ["Accept", "text/xml"]]
    assert CODE not in out["request"]["query_string"] and "x=1" in out["request"]["query_string"]
    assert NOTIFY not in out["request"]["url"]
    extra = {"access_token_encrypted": FILTERED, "count": 3, "client_secret": FILTERED}
    assert out["extra"] == extra
    assert out["message"] == f"Bearer {FILTERED}"
