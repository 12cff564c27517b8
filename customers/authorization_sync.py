"""Keeping our authorizations in step with PG&E's Authorization resource: applying what PG&E
reports (status, periods, scope, usage points), revoking a consent from our side, and the daily
poll of the Authorization feed (consent changes may never be notified).

What ends a consent (docs/pge-protocol.md, "Data APIs"): PG&E's `status` 0 (revoked) or 2
(denied), its `authorizedPeriod` (start + duration) lying in the past, or a refresh answering
`invalid_grant` (customers/tokens.py). The Authorization's `expires_at` is the *access
token's* expiry (ESPI: "Expiration period for the access token"; PG&E's 2015 sample has status
1 and an `expires_at` two months before the entry was written): it is kept for display and
never ends a consent — reading it as the consent's end would erase every customer's tokens on
the first poll.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction

from customers import tokens
from customers.consent_events import consent_status_event
from customers.models import Authorization, SubscriptionUsagePoint
from customers.tokens import client_access_token
from gascap.pge.errors import PgeError

if TYPE_CHECKING:
    from gascap.pge.authorization import AuthorizationInfo

logger = logging.getLogger(__name__)

Status = Authorization.Status

# PG&E's Authorization `status` (docs/pge-protocol.md, Data APIs): 0 revoked, 1 active, 2 denied.
PGE_REVOKED, PGE_ACTIVE, PGE_DENIED = 0, 1, 2


def usage_points_record(
    *, authorization: Authorization, usage_point_ids: list[str], service_kind: str | None = None
) -> int:
    """Record the subscription's usage points (idempotent); returns how many were new."""
    created = 0
    for usage_point_id in usage_point_ids:
        defaults: dict[str, Any] = {}
        if service_kind:
            defaults["service_kind"] = service_kind
        _, was_created = SubscriptionUsagePoint.objects.get_or_create(
            authorization=authorization, usage_point_id=str(usage_point_id), defaults=defaults
        )
        created += int(was_created)
    return created


def authorization_apply_info(
    *, authorization: Authorization, info: AuthorizationInfo, now: datetime
) -> None:
    """Copy PG&E's Authorization resource onto the row (periods, scope, status) and end the
    consent when PG&E's status or its authorized period says it ended."""
    previous = authorization.status
    # A period is copied as a pair: a start without a representable end is open-ended.
    periods = (("authorized_start", "authorized_end"), ("published_start", "published_end"))
    for start, end in periods:
        if getattr(info, start) is not None:
            setattr(authorization, start, getattr(info, start))
            setattr(authorization, end, getattr(info, end))
    if info.expires_at is not None:
        # PG&E's record of the access token's expiry: shown to operators, decides nothing.
        authorization.expires_at = info.expires_at
    if info.scope:
        authorization.scope = info.scope
        authorization.scope_params = info.scope_params or {}
    if info.resource_uri:
        authorization.resource_uri = info.resource_uri
    if info.authorization_uri:
        authorization.authorization_uri = info.authorization_uri
    authorization.pge_status = info.status
    # PG&E's status: 0 revoked, 1 active, 2 denied (docs/pge-protocol.md, Authorization).
    if info.status in (PGE_REVOKED, PGE_DENIED) and authorization.status != Status.REVOKED:
        authorization.status = Status.REVOKED
        authorization.tokens_erase()
        authorization.last_error = (
            "PG&E reports the consent revoked."
            if info.status == PGE_REVOKED
            else "PG&E denied the consent."
        )
        authorization.last_error_at = now
        logger.warning("Authorization %s is %s at PG&E", authorization.pk, authorization.last_error)
    elif (
        info.status == PGE_ACTIVE
        and info.period_ended(now=now)
        and authorization.status not in (Status.REVOKED, Status.EXPIRED)
    ):
        # The consented period is over. An open-ended consent (PG&E's huge durations run past
        # year 9999) has no representable end and never gets here.
        authorization.status = Status.EXPIRED
        authorization.tokens_erase()
        authorization.last_error = (
            f"The consent's authorized period ended at PG&E ({info.authorized_end:%Y-%m-%d})."
        )
        authorization.last_error_at = now
        logger.warning("Authorization %s: authorized period ended", authorization.pk)
    elif info.status == PGE_ACTIVE and authorization.status == Status.PENDING:
        authorization.status = Status.ACTIVE
    authorization.save()
    consent_status_event(authorization=authorization, previous=previous, now=now)
    if info.usage_point_ids:
        usage_points_record(authorization=authorization, usage_point_ids=list(info.usage_point_ids))


def authorization_revoke(*, authorization_id: int, now: datetime) -> Authorization:
    """Revoke the consent at PG&E (`DELETE Authorization/{SID}` with the client token), then
    mark the row REVOKED and erase its tokens. A PG&E error leaves the row as it was."""
    authorization = Authorization.objects.get(pk=authorization_id)
    if authorization.subscription_id and authorization.status != Status.REVOKED:
        token = client_access_token(now=now)
        tokens.pge_client().authorization_delete(
            subscription_id=authorization.subscription_id, client_token=token
        )
    with transaction.atomic():
        authorization = Authorization.objects.select_for_update().get(pk=authorization_id)
        previous = authorization.status
        authorization.status = Status.REVOKED
        authorization.tokens_erase()
        authorization.last_error = "Revoked by an operator."
        authorization.last_error_at = now
        authorization.save()
        consent_status_event(authorization=authorization, previous=previous, now=now)
    logger.warning("Authorization %s revoked by an operator", authorization.pk)
    return authorization


def authorizations_poll(*, now: datetime) -> dict[str, int]:
    """Read PG&E's Authorization feed with the client token and apply each entry we know."""
    token = client_access_token(now=now)
    infos = tokens.pge_client().authorizations_list(client_token=token)
    counts = {"seen": len(infos), "applied": 0, "unknown": 0, "failed": 0}
    for info in infos:
        with transaction.atomic():
            authorization = (
                Authorization.objects.select_for_update()
                .filter(subscription_id=str(info.subscription_id))
                .first()
            )
            if authorization is None:
                counts["unknown"] += 1
                continue
            try:
                authorization_apply_info(authorization=authorization, info=info, now=now)
            except (PgeError, ValueError):
                logger.exception("Could not apply PG&E's Authorization %s", authorization.pk)
                counts["failed"] += 1
            else:
                counts["applied"] += 1
    return counts
