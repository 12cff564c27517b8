"""Periodic token tasks (the lead wires their beat schedules). Tasks take no tokens."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from customers.authorization_sync import authorizations_poll
from customers.services import tokens_refresh_expiring
from customers.states import consent_states_purge


@shared_task(name="customers.tokens_refresh_expiring")
def tokens_refresh_expiring_task() -> dict[str, int]:
    """Refresh access tokens expiring within GASCAP_TOKEN_REFRESH_SKEW; purge old states."""
    now = timezone.now()
    counts = tokens_refresh_expiring(now=now)
    counts["states_purged"] = consent_states_purge(now=now)
    return counts


@shared_task(name="customers.authorizations_poll")
def authorizations_poll_task() -> dict[str, int]:
    """Apply PG&E's Authorization feed (revoked, denied, expired) daily."""
    return authorizations_poll(now=timezone.now())
