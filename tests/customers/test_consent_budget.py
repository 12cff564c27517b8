"""Issue 10 §2: anonymous visitors cannot spend PG&E's call budget, and a customer waiting on
the consent callback comes first. The callback with an unknown state never reaching PG&E is
tested in test_consent_state.py (`test_mismatched_state_is_refused_without_token_request`)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from customers.models import ConsentState
from gascap.pge_budget.budget import budget_usage
from tests.customers.test_consent_state import callback, consent_start

pytestmark = pytest.mark.django_db


def test_consent_start_is_throttled_per_client_address(pge, settings):
    settings.GASCAP_CONSENT_THROTTLE_REQUESTS = 3
    settings.GASCAP_CONSENT_THROTTLE_WINDOW = 600
    visitor = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(3):
        assert visitor.get("/consent/start/").status_code == 302
    refused = visitor.get("/consent/start/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert refused["Cache-Control"] == "no-store"
    # A new session from the same address is the same visitor; another address is not.
    assert Client(REMOTE_ADDR="198.51.100.7").get("/consent/portal/").status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.8").get("/consent/start/").status_code == 302
    assert ConsentState.objects.count() == 4


def test_the_callback_is_throttled_before_any_state_check_or_pge_call(pge, settings):
    settings.GASCAP_CONSENT_THROTTLE_REQUESTS = 2
    visitor = Client(REMOTE_ADDR="203.0.113.9")
    state = consent_start(visitor)
    assert callback(visitor, state="guess-1").status_code == 400
    response = callback(visitor, state=state)  # a valid state, but the address is over
    assert response.status_code == 429
    assert pge.grants == []
    assert ConsentState.objects.get().used_at is None  # not spent: usable once allowed


def test_a_session_holds_a_capped_number_of_unspent_states(pge, settings, sent_tasks):
    settings.GASCAP_CONSENT_STATES_PER_SESSION = 3
    visitor = Client()
    states = [consent_start(visitor) for _ in range(7)]
    assert ConsentState.objects.filter(used_at__isnull=True).count() == 3
    # The oldest were replaced and are refused without reaching PG&E; the newest works.
    assert callback(visitor, state=states[0]).status_code == 400
    assert pge.grants == []
    assert callback(visitor, state=states[-1]).status_code == 303
    assert pge.grant_count("authorization_code") == 1


def test_the_consent_callback_is_counted_and_outranks_other_work(pge, settings, sent_tasks):
    # Scheduled and notified work may use nothing; the customer waiting still gets through.
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 100
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0.5
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0.5
    visitor = Client()
    assert callback(visitor, state=consent_start(visitor)).status_code == 303
    usage = budget_usage(now=timezone.now())
    assert usage.day_calls["token_code"] == 1
    assert usage.day_calls["token_client"] == 1
    assert usage.day_calls["authorization_get"] >= 1


def test_a_callback_beyond_the_whole_budget_asks_to_come_back(pge, settings):
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 1
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0
    visitor = Client()
    state = consent_start(visitor)
    # Someone else spent the hour.
    from gascap.pge.gate import CallKind, Priority
    from gascap.pge_budget.budget import PgeBudgetGate

    PgeBudgetGate(pace=lambda: None).before_call(CallKind.FETCH, Priority.CONSENT)
    response = callback(visitor, state=state)
    assert response.status_code == 502
    assert b"try again" in response.content
    assert pge.grants == []
