"""Reads of customers and authorizations for other packages (ingest) and the admin."""

from __future__ import annotations

from collections.abc import Iterable

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


def active_subscriptions(*, subscription_ids: Iterable[str]) -> dict[str, int]:
    """{subscription id: authorization id} of those of `subscription_ids` whose consent is
    ACTIVE (a Bulk document's filter: only the subscriptions it names are read, so a document
    costs the same whether 10,000 or a million consents are active)."""
    ids = sorted(set(subscription_ids))
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):  # under every backend's bound-parameter limit
        found.update(
            Authorization.objects.filter(
                status=Authorization.Status.ACTIVE, subscription_id__in=ids[start : start + 500]
            ).values_list("subscription_id", "pk")
        )
    return found
