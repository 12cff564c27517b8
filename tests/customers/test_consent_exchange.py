"""Completing a consent: exchange, Authorization resource, usage points, first request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from customers.consent import ConsentFailed, consent_complete
from customers.models import Authorization, ConsentState, Customer
from tests.customers.conftest import (
    ACCESS_TOKEN,
    NOW,
    REFRESH_TOKEN,
    SUBSCRIPTION_ID,
    authorization_entry_xml,
)

pytestmark = pytest.mark.django_db


def state_row() -> ConsentState:
    return ConsentState.objects.create(
        state_hash="0" * 64, session_binding_hash="1" * 64, created_at=NOW, used_at=NOW
    )


def test_exchange_stores_an_active_authorization_with_usage_points(
    pge, sent_tasks, fixture_path, django_capture_on_commit_callbacks
):
    pge.authorization_answers = [
        (200, authorization_entry_xml(fixture_path, usage_point_id="7700001"))
    ]
    with django_capture_on_commit_callbacks(execute=True):
        authorization = consent_complete(state=state_row(), code="test-code", now=NOW)

    stored = Authorization.objects.get(pk=authorization.pk)
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.subscription_id == SUBSCRIPTION_ID
    assert stored.access_token == ACCESS_TOKEN
    assert stored.refresh_token == REFRESH_TOKEN
    assert stored.access_token_expires_at == NOW + timedelta(seconds=3600)
    assert stored.resource_uri.endswith(f"Subscription/{SUBSCRIPTION_ID}/UsagePoint/7700001")
    assert stored.scope_params["FB"][:3] == ["1", "3", "4"]
    # PG&E's 2015 periods are milliseconds: normalised to the real instant (2015-08-26).
    assert stored.authorized_start.year == 2015
    assert stored.pge_status == 1
    assert list(stored.usage_points.values_list("usage_point_id", flat=True)) == ["7700001"]
    # The exchange sent the registered redirect URI and the code, with the client id.
    exchange = next(g for g in pge.grants if g["grant_type"] == "authorization_code")
    assert exchange == {
        "grant_type": "authorization_code",
        "code": "test-code",
        "redirect_uri": "https://gascap.test/consent/callback/",
    }
    assert sent_tasks == [("ingest.subscription_request", [authorization.pk], "pge_fetch")]


def test_authorization_not_visible_yet_is_retried(
    pge, sent_tasks, fixture_path, django_capture_on_commit_callbacks
):
    pge.authorization_answers = [
        (404, b""),
        (404, b""),
        (200, authorization_entry_xml(fixture_path, usage_point_id="7700002")),
    ]
    waits: list[float] = []
    with django_capture_on_commit_callbacks(execute=True):
        authorization = consent_complete(
            state=state_row(), code="test-code", now=NOW, sleep=waits.append
        )
    assert pge.authorization_gets == 3
    assert len(waits) == 2
    assert authorization.usage_points.count() == 1
    assert Authorization.objects.get(pk=authorization.pk).last_error == ""


def test_authorization_never_visible_keeps_the_consent_and_says_why(
    pge, sent_tasks, django_capture_on_commit_callbacks
):
    pge.authorization_answers = [(404, b"")]
    with django_capture_on_commit_callbacks(execute=True):
        authorization = consent_complete(
            state=state_row(), code="test-code", now=NOW, sleep=lambda _s: None
        )
    stored = Authorization.objects.get(pk=authorization.pk)
    assert pge.authorization_gets == 3
    assert stored.status == Authorization.Status.ACTIVE
    assert "daily poll" in stored.last_error
    assert len(sent_tasks) == 1


def test_refused_code_is_a_consent_failure_and_stores_nothing(pge, sent_tasks):
    pge.exchange_answer = (400, '{"error": "invalid_grant", "error_description": "code used"}')
    with pytest.raises(ConsentFailed) as excinfo:
        consent_complete(state=state_row(), code="test-code", now=NOW)
    assert excinfo.value.reason == "code_refused"
    assert not Authorization.objects.exists()
    assert sent_tasks == []


def test_pge_down_during_exchange_asks_to_try_again(pge, client, sent_tasks):
    pge.exchange_answer = (503, '{"error": "temporarily_unavailable"}')
    with pytest.raises(ConsentFailed) as excinfo:
        consent_complete(state=state_row(), code="test-code", now=NOW)
    assert excinfo.value.reason == "unavailable"


def test_reconsent_with_the_same_subscription_reuses_the_row(
    pge, sent_tasks, customer, django_capture_on_commit_callbacks
):
    from tests.customers.conftest import authorization_make

    old = authorization_make(
        customer=customer, status=Authorization.Status.NEEDS_RECONSENT, access_token="test-old"
    )
    with django_capture_on_commit_callbacks(execute=True):
        authorization = consent_complete(state=state_row(), code="test-code", now=NOW)
    assert authorization.pk == old.pk
    stored = Authorization.objects.get(pk=old.pk)
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.access_token == ACCESS_TOKEN
    assert Customer.objects.count() == 1


def test_broker_failure_does_not_fail_the_consent(
    pge, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    from celery import current_app

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(current_app, "send_task", broken)
    with django_capture_on_commit_callbacks(execute=True):
        authorization = consent_complete(state=state_row(), code="test-code", now=NOW)
    assert Authorization.objects.get(pk=authorization.pk).status == Authorization.Status.ACTIVE
    assert "Could not enqueue" in caplog.text
