"""Webhook events for consent status changes (consent.activated / revoked / needs_reconsent /
expired), written through the outbox in the transaction that changed the status."""

from __future__ import annotations

from datetime import datetime

from customers.models import Authorization
from webhooks.outbox import event_emit

Status = Authorization.Status

STATUS_EVENTS = {
    Status.ACTIVE: "consent.activated",
    Status.REVOKED: "consent.revoked",
    Status.NEEDS_RECONSENT: "consent.needs_reconsent",
    Status.EXPIRED: "consent.expired",
}


def consent_status_event(
    *, authorization: Authorization, previous: str | None, now: datetime
) -> None:
    """Emit the event for the authorization's new status, if it changed to one that has one,
    and keep `revoked_at` (the retention clock) in step with the status."""
    if authorization.status == previous:
        return
    revoked_at = now if authorization.status == Status.REVOKED else None
    if authorization.revoked_at != revoked_at:
        Authorization.objects.filter(pk=authorization.pk).update(revoked_at=revoked_at)
        authorization.revoked_at = revoked_at
    event_type = STATUS_EVENTS.get(Status(authorization.status))
    if event_type is None:
        return
    event_emit(
        type=event_type,
        data={
            "consent_id": str(authorization.public_id),
            "external_id": authorization.customer.external_id,
            "status": Status(authorization.status).label,
            "previous_status": Status(previous).label if previous else None,
            "expires_at": authorization.expires_at,
        },
        now=now,
    )
