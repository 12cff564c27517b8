"""Calls to PG&E with a customer's (or the client's) token, by the one rule for a refused token
(docs/pge-protocol.md: PG&E signals an expired token with 401/403): refresh once, retry once,
report a second refusal (`authorization_report_forbidden`) and raise `CallForbidden`. Only a
refusal on the subscription's own Batch resource ends a consent. Used by ingest's fetches and
data requests (docs/architecture.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.db import transaction

from customers.models import Authorization
from customers.tokens import (
    Status,
    access_token_for_subscription,
    authorization_mark_needs_reconsent,
    client_access_token,
)
from gascap.pge.errors import PgeAuthError

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _subscription_root(*, url: str, subscription_id: str) -> bool:
    """`url` is the subscription's own Batch resource on PG&E's configured API base
    (`gascap.pge.resources.ResourceUrl.subscription_root`)."""
    from gascap.pge.resources import ResourceRefused, resource_parse
    from gascap.pge.urls import UrlPolicy

    api_base = settings.GASCAP_PGE_API_BASE
    policy = UrlPolicy(api_base=api_base, token_url=settings.GASCAP_PGE_TOKEN_URL)
    if not policy.is_allowed(url):
        return False
    try:
        resource = resource_parse(url, api_base=api_base)
    except ResourceRefused:
        return False
    return resource.subscription_root and resource.subscription_id == subscription_id


def authorization_report_forbidden(*, subscription_id: str, url: str, now: datetime) -> bool:
    """PG&E answered 403 to a freshly refreshed token at `url`. Only the subscription's own
    Batch resources (`Batch/Subscription/{SID}`, `.../UsagePoint/{UPID}`) prove the consent no
    longer covers us: a 403 elsewhere may mean data outside the granted scope
    (docs/pge-protocol.md), and a path a notification named must never end a consent.
    Returns True when the authorization was moved to NEEDS_RECONSENT."""
    if not _subscription_root(url=url, subscription_id=subscription_id):
        logger.warning(
            "403 for subscription %s on a resource that is not its own batch: consent kept",
            subscription_id,
        )
        return False
    with transaction.atomic():
        authorization = (
            Authorization.objects.select_for_update()
            .filter(subscription_id=subscription_id)
            .first()
        )
        if authorization is None or authorization.status != Status.ACTIVE:
            return False
        authorization_mark_needs_reconsent(
            authorization=authorization,
            reason="PG&E answered 403 to a freshly refreshed token on the subscription's data.",
            now=now,
        )
    return True


class CallForbidden(Exception):
    """PG&E refused a call with a freshly refreshed token (after `pge_call_authorized`'s one
    refresh and retry). `reason`: "forbidden" (the subscription's own batch, or a call with
    the client token) or "forbidden_resource" (a resource that may lie outside the granted
    scope: the consent was kept); `consent_ended`: the authorization was moved to
    NEEDS_RECONSENT; `error` the second refusal."""

    def __init__(self, *, reason: str, consent_ended: bool, error: PgeAuthError) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.consent_ended = consent_ended
        self.error = error


def pge_call_authorized(
    call: Callable[[str], T], *, subscription_id: str, url: str, now: datetime
) -> T:
    """`call(token)` with the token `subscription_id` names (its customer token; the client
    token when empty), by the one rule for a refused token: PG&E signals an expired token
    with 401/403 (docs/pge-protocol.md), so refresh once and retry once; a second refusal is
    reported (`authorization_report_forbidden`: only the subscription's own batch at `url`
    ends the consent) and raised as `CallForbidden`. An `invalid_grant` refusal is raised as
    is, never retried. Raises AuthorizationUnavailable when no usable token exists."""

    def token(force: bool) -> str:
        if subscription_id:
            return access_token_for_subscription(
                subscription_id=subscription_id, now=now, force_refresh=force
            )
        return client_access_token(now=now, force_refresh=force)

    try:
        return call(token(False))
    except PgeAuthError as first:
        if first.invalid_grant:
            raise
    try:
        return call(token(True))
    except PgeAuthError as second:
        ended = False
        own_batch = True
        if subscription_id:
            ended = authorization_report_forbidden(
                subscription_id=subscription_id, url=url, now=now
            )
            own_batch = _subscription_root(url=url, subscription_id=subscription_id)
        reason = "forbidden" if ended or own_batch else "forbidden_resource"
        raise CallForbidden(reason=reason, consent_ended=ended, error=second) from None
