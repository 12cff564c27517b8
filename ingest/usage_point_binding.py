"""Which usage points a fetched document may write, and to which authorization they belong.

A document's hrefs are PG&E's word about where its data belongs, and a document is only as
trustworthy as the request that fetched it (docs/reliability.md T3): a document fetched with
subscription A's token may write usage points under A only, and a Bulk document (client token,
every subscription of the third party: docs/espi-model.md §3) only those of subscriptions
that are ACTIVE here. The binding is decided from the fetch, never from the document:

- `subscription_binding(subscription_id=A)`: every usage point href must be
  `.../Subscription/{A}/UsagePoint/{id}`; one that is not refuses the whole document
  (`DocumentRefused`, reason `foreign_usage_point`) before anything is stored.
- `bulk_binding()`: a usage point under a subscription ACTIVE here is bound to its
  authorization; any other is skipped (not stored, counted).
- no binding (`import_espi` of an operator's file): stored unbound, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from customers.selectors import active_subscriptions, authorization_for_subscription

__all__ = [
    "DocumentRefused",
    "UsagePointBinding",
    "bulk_binding",
    "subscription_binding",
    "usage_point_subscription",
]

# A UsagePoint's self href is `.../Subscription/{SID}/UsagePoint/{UPID}` (docs/espi-model.md §3).
_USAGE_POINT_HREF = re.compile(r"/Subscription/([^/?#]+)/UsagePoint/([^/?#]+)/?$")


class DocumentRefused(Exception):
    """The document may not be stored at all (nothing of it is)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def usage_point_subscription(href: str) -> tuple[str, str] | None:
    """(subscription id, usage point id) named by a usage point's self href, else None."""
    match = _USAGE_POINT_HREF.search(href)
    return (match[1], match[2]) if match else None


@dataclass
class UsagePointBinding:
    """Decides, per usage point href, its authorization id (or that it is skipped)."""

    subscription_id: str | None  # None: a Bulk document (any ACTIVE subscription)
    authorization_id: int | None = None
    _active: dict[str, int] = field(default_factory=dict)

    def authorization_for(self, href: str) -> int | None:
        """The authorization id the usage point belongs to; None means skip it.

        Raises DocumentRefused for a usage point outside the fetching subscription.
        """
        named = usage_point_subscription(href)
        if self.subscription_id is not None:
            if named is None or named[0] != self.subscription_id:
                raise DocumentRefused(
                    "foreign_usage_point",
                    f"usage point {href[:300]!r} is not under subscription "
                    f"{self.subscription_id}, which fetched the document",
                )
            return self.authorization_id
        if named is None:
            return None
        return self._active.get(named[0])


def subscription_binding(*, subscription_id: str) -> UsagePointBinding:
    """The binding of a document fetched with `subscription_id`'s token."""
    authorization = authorization_for_subscription(subscription_id=subscription_id)
    if authorization is None:
        raise DocumentRefused(
            "unknown_subscription", f"no authorization for subscription {subscription_id}"
        )
    return UsagePointBinding(subscription_id=subscription_id, authorization_id=authorization.pk)


def bulk_binding() -> UsagePointBinding:
    """The binding of a Bulk document: the subscriptions ACTIVE here, looked up once."""
    return UsagePointBinding(subscription_id=None, _active=active_subscriptions())
