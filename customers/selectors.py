"""Reads of customers and authorizations for other packages (ingest) and the admin."""

from __future__ import annotations

from django.db.models import QuerySet

from customers.models import Authorization


def active_authorizations() -> QuerySet[Authorization]:
    """Consents work may run for: ACTIVE (not revoked, expired or needing re-consent)."""
    return Authorization.objects.filter(status=Authorization.Status.ACTIVE).select_related(
        "customer"
    )


def authorization_for_subscription(*, subscription_id: str) -> Authorization | None:
    return (
        Authorization.objects.select_related("customer")
        .filter(subscription_id=subscription_id)
        .first()
    )


def active_subscriptions() -> dict[str, int]:
    """{subscription id: authorization id} of the ACTIVE consents (a Bulk document's filter)."""
    return dict(
        Authorization.objects.filter(status=Authorization.Status.ACTIVE)
        .exclude(subscription_id=None)
        .values_list("subscription_id", "pk")
    )
