"""Periodic customer tasks (their beat schedules are in `gascap/schedules.py`). Tasks take no
tokens. There is no token-refresh sweep: customer tokens are refreshed when work needs one
(`customers.tokens.access_token_for_subscription`), which spends PG&E calls only then."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from customers.authorization_sync import authorizations_poll
from customers.states import consent_states_purge
from gascap.pge.gate import BudgetExhausted, Priority, call_priority


@shared_task(name="customers.consent_states_purge")
def consent_states_purge_task() -> dict[str, int]:
    """Delete consent states older than a day."""
    return {"states_purged": consent_states_purge(now=timezone.now())}


@shared_task(name="customers.tokens_refresh_expiring")
def tokens_refresh_expiring_task() -> dict[str, int]:
    """Retired (it refreshed every token in its last minutes: ~24 PG&E calls per customer a
    day). Kept under its name so a beat row not yet removed by `ensure_schedules` does no
    harm: it only purges states, and calls nothing at PG&E."""
    return consent_states_purge_task()


@shared_task(name="customers.authorizations_poll", bind=True)
def authorizations_poll_task(self) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Apply PG&E's Authorization feed (revoked, denied) daily; waits when the budget is used."""
    from gascap.pge_budget.budget import budget_wait_countdown, budget_wait_record

    now = timezone.now()
    try:
        with call_priority(Priority.SCHEDULED):
            return authorizations_poll(now=now)
    except BudgetExhausted as exc:
        budget_wait_record(work="authorizations_poll", exc=exc, now=now)
        self.apply_async(countdown=budget_wait_countdown(exc=exc, now=now))
        return {"budget_wait": 1}
