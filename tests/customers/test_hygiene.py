"""Secrets stay out of logs, task messages and reprs during a whole consent (tests 53, R6)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.test import Client

from customers.models import Authorization
from customers.tokens import access_token_for_subscription
from gascap.celery import app as celery_app
from tests.customers.conftest import ACCESS_TOKEN, NOW, REFRESH_TOKEN, SUBSCRIPTION_ID
from tests.customers.test_consent_state import callback, consent_start

pytestmark = pytest.mark.django_db

CODE = "test-code-LOGCHECK-7777"


def test_consent_and_refresh_log_no_secret(
    pge, sent_tasks, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.DEBUG):
        client = Client()
        state = consent_start(client)
        with django_capture_on_commit_callbacks(execute=True):
            assert callback(client, state=state, code=CODE).status_code == 303
        Authorization.objects.update(access_token_expires_at=NOW)
        access_token_for_subscription(
            subscription_id=SUBSCRIPTION_ID, now=NOW + timedelta(seconds=1)
        )
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in (
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        "test-access-token-NEW",
        CODE,
        state,
        "test-client-token-CCCC3333",
        "test-client-secret-ZZZZ",
    ):
        assert secret not in logged
    # Tasks carry the authorization id only.
    assert sent_tasks == [
        ("ingest.subscription_request", [Authorization.objects.get().pk], "pge_fetch")
    ]
    authorization = Authorization.objects.get()
    for text in (repr(authorization), str(authorization)):
        assert "test-" not in text


def test_token_tasks_are_registered_under_their_contract_names():
    celery_app.loader.import_default_modules()
    assert "customers.tokens_refresh_expiring" in celery_app.tasks  # retired, harmless
    assert "customers.consent_states_purge" in celery_app.tasks
    assert "customers.authorizations_poll" in celery_app.tasks
