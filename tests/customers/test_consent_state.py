"""The consent callback's state rules (docs/reliability.md test 49) and hygiene (test 50)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers.models import Authorization
from customers.states import next_path_clean

pytestmark = pytest.mark.django_db


def consent_start(client: Client, path: str = "/consent/start/", **params: str) -> str:
    """Start a flow; returns the state PG&E would echo back."""
    response = client.get(path, params)
    assert response.status_code == 302
    assert response["Referrer-Policy"] == "no-referrer"
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    return query["state"][0]


def callback(client: Client, *, state: str | None, code: str = "test-code-1234", **extra):
    params = {"code": code, **extra}
    if state is not None:
        params["state"] = state
    return client.get("/consent/callback/", params)


def test_start_redirects_to_the_configured_consent_page(pge):
    response = Client().get("/consent/start/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        "https://sharemydata.pge.test/myAuthorization"
    )
    query = parse_qs(target.query)
    assert query["client_id"] == ["test-client-id"]
    assert query["redirect_uri"] == ["https://gascap.test/consent/callback/"]
    assert query["response_type"] == ["code"]
    assert len(query["state"][0]) >= 40


def test_two_starts_give_different_states(pge):
    client = Client()
    assert consent_start(client) != consent_start(client)


def test_missing_state_is_refused_without_token_request(pge):
    client = Client()
    consent_start(client)
    response = callback(client, state=None)
    assert response.status_code == 400
    assert pge.grants == []


def test_mismatched_state_is_refused_without_token_request(pge):
    client = Client()
    state = consent_start(client)
    response = callback(client, state=state[:-2] + "xx")
    assert response.status_code == 400
    assert pge.grants == []


def test_state_from_another_session_is_refused(pge):
    victim, attacker = Client(), Client()
    attacker_state = consent_start(attacker)
    consent_start(victim)
    response = callback(victim, state=attacker_state)
    assert response.status_code == 400
    assert pge.grants == []


def test_expired_state_is_refused(pge):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        state = consent_start(client)
        traveller.shift(timedelta(seconds=601))
        response = callback(client, state=state)
    assert response.status_code == 400
    assert pge.grants == []


def test_state_just_inside_ten_minutes_is_accepted(pge, sent_tasks):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        state = consent_start(client)
        traveller.shift(timedelta(seconds=590))
        response = callback(client, state=state)
    assert response.status_code == 303


def test_valid_state_exchanges_once_and_reuse_is_refused(pge, sent_tasks):
    client = Client()
    state = consent_start(client)
    first = callback(client, state=state)
    assert first.status_code == 303
    assert pge.grant_count("authorization_code") == 1
    again = callback(client, state=state)
    assert again.status_code == 400
    assert pge.grant_count("authorization_code") == 1


def test_seed_paths_run_the_same_flow(pge, sent_tasks):
    client = Client()
    state = consent_start(client, path="/Goto_login")
    response = client.get("/OAuthCallback", {"code": "test-code-1234", "state": state})
    assert response.status_code == 303
    assert pge.grant_count("authorization_code") == 1


def test_cancelled_consent_shows_a_page_and_requests_no_token(pge):
    client = Client()
    state = consent_start(client)
    response = client.get("/consent/callback/", {"error": "access_denied", "state": state})
    assert response.status_code == 200
    assert b"Consent cancelled" in response.content
    assert response["Referrer-Policy"] == "no-referrer"
    assert pge.grants == []
    assert not Authorization.objects.exists()


def test_callback_redirects_303_away_from_the_code(pge, sent_tasks):
    client = Client()
    state = consent_start(client)
    response = callback(client, state=state, code="test-code-SECRETISH")
    assert response.status_code == 303
    assert response["Referrer-Policy"] == "no-referrer"
    assert "code" not in response["Location"]
    assert "test-code-SECRETISH" not in response["Location"]
    done = client.get(response["Location"])
    assert done.status_code == 200
    assert done["Referrer-Policy"] == "no-referrer"
    assert b"consent received" in done.content


def test_consent_pages_load_no_third_party_urls(pge, sent_tasks):
    client = Client()
    state = consent_start(client)
    pages = [
        callback(Client(), state="nope"),
        client.get("/consent/callback/", {"error": "access_denied", "state": state}),
    ]
    state = consent_start(client)
    pages.append(client.get(callback(client, state=state)["Location"]))
    for page in pages:
        html = page.content.decode()
        assert (
            "http://" not in html
            and "https://" not in html
            and "//" not in html.replace("<!doctype", "")
        )


def test_next_is_followed_only_when_same_site(pge, sent_tasks):
    client = Client()
    state = consent_start(client, next="/thanks/?from=pge")
    assert callback(client, state=state)["Location"] == "/thanks/?from=pge"
    state = consent_start(client, next="https://evil.test/")
    assert callback(client, state=state)["Location"].startswith("/consent/done/")


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.test/",
        "//evil.test/",
        "/\\evil.test",
        "\\\\evil.test",
        "/%2F%2Fevil.test",
        "/%5Cevil.test",
        "%2F%2Fevil.test",
        "javascript:alert(1)",
        "evil.test/path",
        "/ok\r\nSet-Cookie: x=1",
        "",
    ],
)
def test_next_path_rejects_offsite_forms(value):
    assert next_path_clean(value) == ""


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_next_path_never_leaves_the_site(value):
    cleaned = next_path_clean(value)
    if cleaned:
        assert cleaned.startswith("/")
        assert not cleaned.startswith("//")
        assert "\\" not in cleaned and "%" not in cleaned
        parts = urlsplit(cleaned)
        assert parts.scheme == "" and parts.netloc == ""


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["//", "/\\", "\\\\", "/%2f/", "/%2F%2F", "/%5c", "https://", "http:"]),
    st.text(alphabet="abcdefghij.-:/\\%25", max_size=20),
)
def test_next_path_rejects_every_offsite_prefix(prefix, rest):
    assert next_path_clean(prefix + rest) == ""


def test_portal_uri_starts_a_fresh_flow(pge, settings):
    settings.GASCAP_PGE_THIRD_PARTY_ID = "50000"
    client = Client()
    response = client.get(
        "/consent/portal/", {"scope": "FB=1_3_4_5_13_14_39", "ThirdPartyID": "50000"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://sharemydata.pge.test/myAuthorization?")
    other = client.get("/consent/portal/", {"ThirdPartyID": "59999"})
    assert other.status_code == 400
