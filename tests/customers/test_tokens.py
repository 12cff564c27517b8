"""The token lifecycle: lazy and forced refresh, rotation, keep-old, re-consent,
client-credentials token (docs/reliability.md tests 54-56, single-process part)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from customers.authorized_calls import authorization_report_forbidden
from customers.models import Authorization, ClientToken
from customers.selectors import active_authorizations
from customers.tokens import (
    AuthorizationUnavailable,
    access_token_for_subscription,
    client_access_token,
)
from gascap.pge.errors import PgeTransientError
from tests.customers.conftest import (
    ACCESS_TOKEN,
    API_BASE,
    NOW,
    REFRESH_TOKEN,
    SUBSCRIPTION_ID,
    authorization_make,
    token_json,
)

pytestmark = pytest.mark.django_db


def test_fresh_token_is_returned_without_a_request(pge, authorization):
    token = access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
    assert token == ACCESS_TOKEN
    assert pge.grants == []


def test_token_expiring_within_the_skew_is_refreshed_first(pge, customer, settings):
    settings.GASCAP_TOKEN_REFRESH_SKEW = 300
    authorization_make(customer=customer, expires_at=NOW + timedelta(seconds=200))
    pge.refresh_answers = [
        (200, token_json(access_token="test-access-token-R1", refresh_token="test-refresh-R1"))
    ]
    token = access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
    assert token == "test-access-token-R1"
    assert pge.grants == [{"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN}]
    stored = Authorization.objects.get()
    # PG&E rotated the refresh token: the new one is stored.
    assert stored.refresh_token == "test-refresh-R1"
    assert stored.access_token_expires_at == NOW + timedelta(seconds=3600)
    assert stored.last_refreshed_at == NOW


def test_refresh_without_a_new_refresh_token_keeps_the_old_one(pge, customer):
    authorization_make(customer=customer, expires_at=NOW - timedelta(seconds=1))
    pge.refresh_answers = [(200, token_json(access_token="test-access-token-R2"))]
    assert access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW) == (
        "test-access-token-R2"
    )
    assert Authorization.objects.get().refresh_token == REFRESH_TOKEN


def test_forced_refresh_after_403_asks_pge_once(pge, authorization):
    token = access_token_for_subscription(
        subscription_id=SUBSCRIPTION_ID, now=NOW, force_refresh=True
    )
    assert token == "test-access-token-NEW"
    assert pge.grant_count("refresh_token") == 1
    # A second worker forcing right after uses the token just stored.
    again = access_token_for_subscription(
        subscription_id=SUBSCRIPTION_ID, now=NOW + timedelta(seconds=2), force_refresh=True
    )
    assert again == "test-access-token-NEW"
    assert pge.grant_count("refresh_token") == 1


def test_invalid_grant_moves_to_needs_reconsent_and_alerts(pge, customer, caplog):
    authorization_make(customer=customer, expires_at=NOW - timedelta(seconds=1))
    pge.refresh_answers = [(400, '{"error": "invalid_grant", "error_description": "revoked"}')]
    with caplog.at_level(logging.ERROR), pytest.raises(AuthorizationUnavailable) as excinfo:
        access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
    assert excinfo.value.reason == "needs_reconsent"
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.NEEDS_RECONSENT
    assert "invalid_grant" in stored.last_error
    assert stored.last_error_at == NOW
    assert any(
        r.levelno == logging.ERROR and "re-consent" in r.getMessage() for r in caplog.records
    )
    assert REFRESH_TOKEN not in caplog.text and ACCESS_TOKEN not in caplog.text
    # Work stops: no further refresh attempt, no retry loop.
    with pytest.raises(AuthorizationUnavailable):
        access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW, force_refresh=True)
    assert pge.grant_count("refresh_token") == 1
    assert not active_authorizations().exists()


def test_transient_refresh_failure_keeps_the_consent(pge, customer):
    authorization_make(customer=customer, expires_at=NOW - timedelta(seconds=1))
    pge.refresh_answers = [(503, '{"error": "temporarily_unavailable"}')]
    with pytest.raises(PgeTransientError):
        access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.refresh_token == REFRESH_TOKEN
    assert "Refresh failed" in stored.last_error


def test_forbidden_after_fresh_token_needs_reconsent(pge, authorization):
    url = f"{API_BASE}Batch/Subscription/{SUBSCRIPTION_ID}?correlationID=5e1f7a2c-0000-4000"
    assert authorization_report_forbidden(subscription_id=SUBSCRIPTION_ID, url=url, now=NOW)
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.NEEDS_RECONSENT
    assert "403" in stored.last_error
    with pytest.raises(AuthorizationUnavailable) as excinfo:
        access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
    assert excinfo.value.reason == "needs_reconsent"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Authorization.Status.REVOKED, "revoked"),
        (Authorization.Status.EXPIRED, "expired"),
        (Authorization.Status.PENDING, "pending"),
    ],
)
def test_unusable_authorizations_raise(pge, customer, status, reason):
    authorization_make(customer=customer, status=status)
    with pytest.raises(AuthorizationUnavailable) as excinfo:
        access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
    assert excinfo.value.reason == reason
    assert pge.grants == []


def test_unknown_subscription_raises(pge):
    with pytest.raises(AuthorizationUnavailable) as excinfo:
        access_token_for_subscription(subscription_id="90009999", now=NOW)
    assert excinfo.value.reason == "unknown"


def test_no_sweep_refreshes_tokens_only_work_does(pge, customer):
    """Issue 10 §2: the every-2-minutes sweep spent ~24 refreshes per customer a day. The
    retired task (kept under its name for stale beat rows) calls nothing at PG&E, and a
    token is refreshed when work asks for it."""
    from customers import tokens
    from customers.tasks import tokens_refresh_expiring_task

    authorization_make(customer=customer, expires_at=NOW + timedelta(seconds=60))
    assert not hasattr(tokens, "tokens_refresh_expiring")
    tokens_refresh_expiring_task()
    assert pge.grants == []
    assert Authorization.objects.get().access_token == ACCESS_TOKEN
    # Work that needs the token refreshes it, once.
    assert access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW) == (
        "test-access-token-NEW"
    )
    assert pge.grant_count("refresh_token") == 1


def test_client_token_is_fetched_once_and_reused(pge):
    assert client_access_token(now=NOW) == "test-client-token-CCCC3333"
    assert client_access_token(now=NOW + timedelta(minutes=10)) == "test-client-token-CCCC3333"
    assert pge.grant_count("client_credentials") == 1
    client_access_token(now=NOW + timedelta(minutes=56))
    assert pge.grant_count("client_credentials") == 2
    row = ClientToken.objects.get()
    assert "test-client-token" not in row.access_token_encrypted
