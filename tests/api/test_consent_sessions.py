"""Consent tied to the company's user: a single-use link, PG&E's consent, back to the app."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from customers.models import Authorization, ConsentSession, Customer
from tests.customers.conftest import ACCESS_TOKEN, token_json

pytestmark = pytest.mark.django_db

RETURN = "http://localhost:3000/after-consent?from=app"


@pytest.fixture(autouse=True)
def origins(settings):
    settings.GASCAP_APP_RETURN_ORIGINS = ["http://localhost:3000", "https://app.example.org"]


def session_create(app, external_id: str = "user-42", return_url: str = RETURN) -> dict:
    response = app.post(
        "/api/v1/consent-sessions", {"external_id": external_id, "return_url": return_url}
    )
    assert response.status_code == 201, response.content
    return json.loads(response.content)


def open_link(browser: Client, url: str) -> str:
    """Open the app's link; returns the OAuth state sent to PG&E."""
    response = browser.get(urlsplit(url).path)
    assert response.status_code == 302
    assert response["Location"].startswith("https://sharemydata.pge.test/myAuthorization")
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def callback(browser: Client, state: str, **params: str):
    return browser.get("/consent/callback/", {"state": state, **params})


def test_session_link_consents_and_returns_to_the_app_with_the_result(app, pge, sent_tasks):
    created = session_create(app)
    assert created["url"].startswith("http://testserver/consent/session/")
    browser = Client()
    state = open_link(browser, created["url"])
    response = callback(browser, state, code="test-code-1")
    assert response.status_code == 303
    target = urlsplit(response["Location"])
    assert (
        f"{target.scheme}://{target.netloc}{target.path}" == "http://localhost:3000/after-consent"
    )
    query = parse_qs(target.query)
    authorization = Authorization.objects.get()
    assert query == {
        "from": ["app"],
        "consent_id": [str(authorization.public_id)],
        "status": ["active"],
    }
    assert authorization.customer.external_id == "user-42"
    assert authorization.access_token == ACCESS_TOKEN
    session = ConsentSession.objects.get()
    assert str(session.public_id) == created["id"]
    assert session.outcome == "active" and session.authorization == authorization


def test_the_link_is_single_use(app, pge):
    created = session_create(app)
    open_link(Client(), created["url"])
    again = Client().get(urlsplit(created["url"]).path)
    assert again.status_code == 400
    assert b"already used or has expired" in again.content


def test_the_link_expires_after_30_minutes(app, pge):
    created = session_create(app)
    with time_machine.travel(timezone.now() + timedelta(minutes=30, seconds=1)):
        response = Client().get(urlsplit(created["url"]).path)
    assert response.status_code == 400
    with time_machine.travel(timezone.now() + timedelta(minutes=29)):
        open_link(Client(), session_create(app)["url"])


def test_a_reconsent_by_the_same_external_id_joins_the_same_customer(app, pge, sent_tasks):
    browser = Client()
    callback(browser, open_link(browser, session_create(app)["url"]), code="c1")
    pge.exchange_answer = (
        200,
        token_json(access_token="test-access-token-SECOND", subscription_id="90000002"),
    )
    browser = Client()
    response = callback(browser, open_link(browser, session_create(app)["url"]), code="c2")
    assert parse_qs(urlsplit(response["Location"]).query)["status"] == ["active"]
    assert Customer.objects.count() == 1
    customer = Customer.objects.get()
    assert customer.external_id == "user-42"
    assert sorted(customer.authorizations.values_list("subscription_id", flat=True)) == [
        "90000001",
        "90000002",
    ]


def test_a_plain_consent_is_adopted_by_the_app_user_who_consents_again(app, pge, sent_tasks):
    browser = Client()
    start = browser.get("/consent/start/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    callback(browser, state, code="plain")
    plain = Customer.objects.get()
    assert plain.external_id is None
    browser = Client()
    callback(browser, open_link(browser, session_create(app, "user-7")["url"]), code="app")
    assert Customer.objects.get().pk == plain.pk
    assert Customer.objects.get().external_id == "user-7"


def test_cancelled_consent_returns_to_the_app_with_status_cancelled(app, pge):
    browser = Client()
    state = open_link(browser, session_create(app)["url"])
    response = callback(browser, state, error="access_denied")
    assert response.status_code == 303
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["status"] == ["cancelled"] and "consent_id" not in query
    assert not Authorization.objects.exists()


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example.com/x",
        "http://localhost:3001/x",
        "https://localhost:3000/x",
        "http://user@localhost:3000/x",
        "http://localhost:3000@evil.example.com/x",
        "http://localhost:3000/x#frag",
        "javascript:alert(1)",
        "/relative/path",
        "http://localhost:3000\\@evil.example.com/",
        "http://app.example.org.evil.example.com/",
    ],
)
def test_return_urls_off_the_allow_list_are_refused(app, return_url):
    response = app.post("/api/v1/consent-sessions", {"external_id": "u", "return_url": return_url})
    assert response.status_code == 422
    body = json.loads(response.content)
    # Refused by the schema (not http(s)) or by the allow-list: either way it names the field.
    assert body.get("field") == "return_url" or "return_url" in json.dumps(body["errors"])
    assert not ConsentSession.objects.exists()


def test_no_allowed_origins_means_no_sessions(app, settings):
    settings.GASCAP_APP_RETURN_ORIGINS = []
    response = app.post("/api/v1/consent-sessions", {"external_id": "u", "return_url": RETURN})
    assert response.status_code == 422


def test_the_plain_consent_start_keeps_working(pge):
    response = Client().get("/consent/start/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://sharemydata.pge.test/myAuthorization")
