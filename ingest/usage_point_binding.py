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
  authorization; any other is skipped (not stored, counted). Only the subscriptions the
  document names are looked up (`prefetch`, one query per 500), never every ACTIVE consent:
  a Bulk document of 500 customers costs the same at 10,000 consents as at a million
  (reading them all made each of 200 documents read 100,000 rows at 100,000 customers).
- no binding (`import_espi` of an operator's file): stored unbound, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    # Bulk: subscriptions looked up so far -> their authorization id, None when not ACTIVE.
    _looked_up: dict[str, int | None] = field(default_factory=dict)

    def prefetch(self, hrefs: Iterable[str]) -> None:
        """Bulk: look up at once the subscriptions these usage point hrefs name (those not
        looked up yet), so `authorization_for` asks the database nothing per usage point."""
        if self.subscription_id is not None:
            return
        wanted = set()
        for href in hrefs:
            named = usage_point_subscription(href)
            if named is not None and named[0] not in self._looked_up:
                wanted.add(named[0])
        if wanted:
            active = active_subscriptions(subscription_ids=wanted)
            for subscription_id in wanted:
                self._looked_up[subscription_id] = active.get(subscription_id)

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
        if named[0] not in self._looked_up:
            self.prefetch([href])
        return self._looked_up[named[0]]


def subscription_binding(*, subscription_id: str) -> UsagePointBinding:
    """The binding of a document fetched with `subscription_id`'s token."""
    authorization = authorization_for_subscription(subscription_id=subscription_id)
    if authorization is None:
        raise DocumentRefused(
            "unknown_subscription", f"no authorization for subscription {subscription_id}"
        )
    return UsagePointBinding(subscription_id=subscription_id, authorization_id=authorization.pk)


def bulk_binding() -> UsagePointBinding:
    """The binding of a Bulk document: the subscriptions it names that are ACTIVE here."""
    return UsagePointBinding(subscription_id=None)
