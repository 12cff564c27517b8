"""Fixtures for the customers tests: encryption keys, a fake PG&E over `responses`, rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses
from cryptography.fernet import Fernet

from customers.models import Authorization, Customer
from tests import builders
from tests.builders import customer_make, pge_settings_fake

# Obviously synthetic values: nothing here looks like a real customer or a real token.
ACCESS_TOKEN = "test-access-token-AAAA1111"
REFRESH_TOKEN = "test-refresh-token-BBBB2222"
SUBSCRIPTION_ID = "90000001"
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def field_keys(settings) -> list[str]:
    keys = [Fernet.generate_key().decode("ascii")]
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = keys
    settings.GASCAP_FIELD_ENCRYPTION_DEV_KEY_FILE = ""
    return keys


@pytest.fixture
def customer(db) -> Customer:
    return customer_make(display_name="Test Household A")


def authorization_make(
    *,
    customer: Customer,
    subscription_id: str = SUBSCRIPTION_ID,
    status: str = Authorization.Status.ACTIVE,
    access_token: str | None = ACCESS_TOKEN,
    refresh_token: str | None = REFRESH_TOKEN,
    expires_at: datetime | None = None,
) -> Authorization:
    """`tests.builders.authorization_make` with this tier's defaults: tokens, scope, expiry."""
    return builders.authorization_make(
        customer=customer,
        subscription_id=subscription_id,
        status=status,
        scope="FB=1_3_4_5_13_14_39;IntervalDuration=900_3600;",
        scope_params={"FB": ["1", "3", "4", "5", "13", "14", "39"]},
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=expires_at or NOW + timedelta(hours=1),
    )


@pytest.fixture
def authorization(customer) -> Authorization:
    return authorization_make(customer=customer)


def token_json(
    *,
    access_token: str,
    refresh_token: str | None = None,
    subscription_id: str = SUBSCRIPTION_ID,
    api_base: str = "https://api.pge.test/GreenButtonConnect/espi/1_1/resource/",
) -> str:
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "FB=1_3_4_5_13_14_39;IntervalDuration=900_3600;",
        "resourceURI": f"{api_base}Batch/Subscription/{subscription_id}",
        "authorizationURI": f"{api_base}Authorization/{subscription_id}",
    }
    if refresh_token:
        body["refresh_token"] = refresh_token
    return json.dumps(body)


@pytest.fixture
def pge_http() -> Iterator[responses.RequestsMock]:
    """PG&E's HTTP boundary; unmatched requests fail the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


API_BASE = "https://api.pge.test/GreenButtonConnect/espi/1_1/resource/"
TOKEN_URL = "https://api.pge.test/datacustodian/oauth/v2/token"
AUTHORIZE_URL = "https://sharemydata.pge.test/myAuthorization"
REDIRECT_URI = "https://gascap.test/consent/callback/"


@pytest.fixture
def fake_pge(settings, tmp_path):
    """Settings that point the real PgeClient at a fake PG&E host (answers via `responses`)."""
    pge_settings_fake(settings, tmp_path, api_base=API_BASE, token_url=TOKEN_URL)
    settings.GASCAP_PGE_AUTHORIZE_URL = AUTHORIZE_URL
    settings.GASCAP_PGE_REDIRECT_URI = REDIRECT_URI
    settings.GASCAP_PGE_CLIENT_ID = "test-client-id"
    settings.GASCAP_PGE_CLIENT_SECRET = "test-client-secret-ZZZZ"
    settings.GASCAP_CONSENT_AUTHORIZATION_RETRY_SECONDS = 0
    return settings


def authorization_entry_xml(
    fixture_path,
    *,
    subscription_id: str = SUBSCRIPTION_ID,
    status: int = 1,
    expires_at: datetime = NOW + timedelta(days=365),
    usage_point_id: str | None = None,
    authorized_period: tuple[datetime, timedelta] | None = None,
) -> bytes:
    """PG&E's 2015 Authorization entry with this test's subscription, status, access token
    expiry (`expires_at`) and, when given, a closed authorized period (start, duration); the
    sample's own period is open-ended."""
    text = fixture_path("pge_cmd_2015_authorization_entry.xml").read_text()
    text = text.replace("https://api.pge.com/GreenButtonConnect/espi/1_1/resource/", API_BASE)
    resource = f"Subscription/{subscription_id}"
    if usage_point_id:
        resource += f"/UsagePoint/{usage_point_id}"
    text = text.replace("resource/Subscription/0", f"resource/{resource}")
    text = text.replace("resource/Authorization/0", f"resource/Authorization/{subscription_id}")
    text = text.replace("<ns0:status>1</ns0:status>", f"<ns0:status>{status}</ns0:status>")
    text = text.replace(
        "<ns0:expires_at>1440670029</ns0:expires_at>",
        f"<ns0:expires_at>{int(expires_at.timestamp())}</ns0:expires_at>",
    )
    if authorized_period is not None:
        start, duration = authorized_period
        # Milliseconds, like the sample's periods.
        text = text.replace(
            "<ns0:duration>251963658000000</ns0:duration>\n"
            "            <ns0:start>1440585200000</ns0:start>",
            f"<ns0:duration>{int(duration.total_seconds() * 1000)}</ns0:duration>\n"
            f"            <ns0:start>{int(start.timestamp() * 1000)}</ns0:start>",
        )
        assert str(int(start.timestamp() * 1000)) in text
    return text.encode()


def authorization_feed_xml(entries: list[bytes]) -> bytes:
    inner = b"".join(entries)
    return b'<feed xmlns="http://www.w3.org/2005/Atom"><id>test-feed</id>' + inner + b"</feed>"


CLIENT_TOKEN_JSON = json.dumps(
    {"client_access_token": "test-client-token-CCCC3333", "expires_in": 3600, "scope": "FB=35"}
)


class PgeScript:
    """A scripted PG&E behind `responses`: counts token grants, serves Authorization entries.

    Counters are lock-protected so threads may share it.
    """

    def __init__(self, mock: responses.RequestsMock, fixture_path) -> None:
        import threading
        from urllib.parse import parse_qs

        self._parse_qs = parse_qs
        self._lock = threading.Lock()
        self.mock = mock
        self.fixture_path = fixture_path
        self.grants: list[dict[str, str]] = []
        self.refresh_answers: list[tuple[int, str]] = []
        self.exchange_answer: tuple[int, str] = (
            200,
            token_json(access_token=ACCESS_TOKEN, refresh_token=REFRESH_TOKEN),
        )
        self.authorization_answers: list[tuple[int, bytes]] = []
        self.authorization_gets = 0
        self.deletes: list[str] = []
        self.delete_status = 200
        self.delay = 0.0
        mock.add_callback(responses.POST, TOKEN_URL, callback=self._token)
        mock.add_callback(
            responses.GET,
            re.compile(re.escape(API_BASE) + r"Authorization/\w+$"),
            callback=self._authorization,
        )
        mock.add_callback(
            responses.DELETE,
            re.compile(re.escape(API_BASE) + r"Authorization/\w+$"),
            callback=self._delete,
        )

    def grant_count(self, grant_type: str) -> int:
        with self._lock:
            return sum(1 for grant in self.grants if grant["grant_type"] == grant_type)

    def _token(self, request):
        import time

        form = {k: v[0] for k, v in self._parse_qs(request.body).items()}
        with self._lock:
            self.grants.append(form)
            index = sum(1 for g in self.grants if g["grant_type"] == form["grant_type"]) - 1
        if self.delay:
            time.sleep(self.delay)
        headers = {"Content-Type": "application/json"}
        if form["grant_type"] == "client_credentials":
            return 200, headers, CLIENT_TOKEN_JSON
        if form["grant_type"] == "authorization_code":
            return self.exchange_answer[0], headers, self.exchange_answer[1]
        answers = self.refresh_answers or [
            (200, token_json(access_token="test-access-token-NEW", refresh_token=None))
        ]
        status, body = answers[min(index, len(answers) - 1)]
        return status, headers, body

    def _authorization(self, request):
        with self._lock:
            self.authorization_gets += 1
            index = self.authorization_gets - 1
        answers = self.authorization_answers or [(200, authorization_entry_xml(self.fixture_path))]
        status, body = answers[min(index, len(answers) - 1)]
        return status, {"Content-Type": "application/atom+xml"}, body

    def _delete(self, request):
        with self._lock:
            self.deletes.append(request.url)
        return self.delete_status, {}, ""


@pytest.fixture
def pge(fake_pge, pge_http, fixture_path) -> PgeScript:
    return PgeScript(pge_http, fixture_path)


@pytest.fixture
def sent_tasks(monkeypatch) -> list[tuple[str, list, str | None]]:
    """Tasks published by name (recorded instead of reaching a broker)."""
    from celery import current_app

    sent: list[tuple[str, list, str | None]] = []

    def send_task(name, args=None, kwargs=None, queue=None, **options):
        sent.append((name, list(args or []), queue))

    monkeypatch.setattr(current_app, "send_task", send_task)
    return sent
