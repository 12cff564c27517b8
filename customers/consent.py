"""Completing a consent after PG&E's callback: exchange the code, store the authorization,
read PG&E's Authorization resource (retrying while it is not visible yet), record the usage
points, and enqueue the first data request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import transaction

from customers import tokens
from customers.authorization_sync import authorization_apply_info
from customers.consent_events import consent_status_event
from customers.consent_sessions import customer_for_external_id
from customers.models import Authorization, ConsentState, Customer
from customers.publish import subscription_request_enqueue
from customers.tokens import client_access_token
from gascap.pge.errors import PgeError, PgePermanentError
from gascap.pge.gate import BudgetExhausted, Priority, call_priority

logger = logging.getLogger(__name__)

Status = Authorization.Status


class ConsentFailed(Exception):
    """An anticipated failure of the exchange, shown to the customer as a page.

    `reason`: "code_refused" (expired or reused code, invalid_grant), "unavailable" (PG&E
    down or slow: try again), "incomplete" (PG&E's answer named no subscription).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"consent failed: {reason}")
        self.reason = reason


def _customer_for(state: ConsentState, subscription_id: str) -> Customer:
    if state.consent_session_id:
        # The app's user: the same external_id is always the same customer.
        return customer_for_external_id(
            external_id=state.consent_session.external_id,  # type: ignore[union-attr]
            subscription_id=subscription_id,
        )
    if state.customer_id:
        return state.customer  # type: ignore[return-value]
    existing = Authorization.objects.filter(subscription_id=subscription_id).first()
    if existing is not None:
        return existing.customer
    # No personal data is known at this point: a neutral name the operator can edit.
    return Customer.objects.create(display_name=f"Subscription {subscription_id}")


def consent_complete(
    *,
    state: ConsentState,
    code: str,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
) -> Authorization:
    """Exchange `code` and store the consent; returns the ACTIVE authorization.

    Raises ConsentFailed for failures the customer should see as a page; other exceptions
    propagate (unanticipated: a 500 and an error report). A customer waiting here outranks
    every other use of PG&E's call budget (`Priority.CONSENT`).
    """
    with call_priority(Priority.CONSENT):
        return _consent_complete(state=state, code=code, now=now, sleep=sleep)


def _consent_complete(
    *, state: ConsentState, code: str, now: datetime, sleep: Callable[[float], None]
) -> Authorization:
    client = tokens.pge_client()
    try:
        answer = client.exchange_code(
            code=code, redirect_uri=settings.GASCAP_PGE_REDIRECT_URI, now=now
        )
    except BudgetExhausted as exc:
        # Even the consent reserve is used: PG&E would refuse us too. Ask to come back.
        logger.error("Code exchange refused by the PG&E call budget: %s", exc)
        raise ConsentFailed("unavailable") from exc
    except PgeError as exc:
        logger.warning("Code exchange failed: %s (HTTP %s)", exc.code, exc.status)
        if exc.status is not None and 400 <= exc.status < 500:
            raise ConsentFailed("code_refused") from exc
        raise ConsentFailed("unavailable") from exc
    subscription_id = answer.subscription_id
    if not subscription_id:
        logger.error("PG&E's token answer named no resourceURI / subscription")
        raise ConsentFailed("incomplete")

    with transaction.atomic():
        customer = _customer_for(state, subscription_id)
        authorization = (
            Authorization.objects.select_for_update()
            .filter(subscription_id=subscription_id)
            .first()
        ) or Authorization(customer=customer, subscription_id=subscription_id)
        previous = authorization.status if authorization.pk else None
        if state.consent_session_id and authorization.customer_id != customer.pk:
            # Whoever completed PG&E's login for this subscription through the app is its
            # user now: the consent follows the external_id of the latest session.
            logger.info("Authorization %s moves to the app user's customer", authorization.pk)
            authorization.customer = customer
        # A re-consent with the same subscription id revives the row with the new tokens.
        authorization.status = Status.ACTIVE
        authorization.resource_uri = answer.resource_uri or ""
        authorization.authorization_uri = answer.authorization_uri or ""
        authorization.scope = answer.scope or ""
        authorization.scope_params = answer.scope_params or {}
        authorization.pge_status = None
        authorization.last_error = ""
        authorization.last_error_at = None
        authorization.last_refreshed_at = now
        if authorization.pk is None:
            authorization.save()  # the token binding must exist before tokens are written
        authorization.tokens_set(
            access_token=answer.access_token,
            refresh_token=answer.refresh_token,
            expires_at=answer.expires_at,
        )
        authorization.save()
        consent_status_event(authorization=authorization, previous=previous, now=now)

    authorization_fetch_after_consent(authorization=authorization, now=now, sleep=sleep)

    with transaction.atomic():
        subscription_request_enqueue(authorization_id=authorization.pk)
    logger.info("Consent stored for authorization %s", authorization.pk)
    return authorization


def authorization_fetch_after_consent(
    *,
    authorization: Authorization,
    now: datetime,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Read PG&E's Authorization resource for a fresh consent and apply it.

    PG&E sometimes does not show the Authorization right after the exchange (docs/pge-protocol.md,
    "Code exchange"): retry a few times a few seconds apart. When it never appears the consent
    still stands; the row says why and the daily poll fills the details. Returns True when
    applied.
    """
    attempts = max(1, settings.GASCAP_CONSENT_AUTHORIZATION_RETRIES)
    delay = settings.GASCAP_CONSENT_AUTHORIZATION_RETRY_SECONDS
    last: PgeError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(delay)
        try:
            info = tokens.pge_client().authorization_get(
                subscription_id=authorization.subscription_id,
                client_token=client_access_token(now=now),
            )
        except PgePermanentError as exc:
            last = exc
            if exc.status != 404:
                break
            continue
        except PgeError as exc:
            last = exc
            continue
        except BudgetExhausted:
            # The consent stands; the daily poll reads the Authorization later.
            last = PgeError("PG&E call budget used", code="budget_wait")
            break
        with transaction.atomic():
            authorization_apply_info(authorization=authorization, info=info, now=now)
        if not authorization.usage_points.exists() and authorization.resource_uri:
            logger.info("Authorization %s names no usage points yet", authorization.pk)
        return True
    authorization.last_error = (
        "PG&E's Authorization resource was not readable after consent "
        f"({last.code if last else 'unknown'}); the daily poll will fill it in."
    )
    authorization.last_error_at = now
    authorization.save(update_fields=["last_error", "last_error_at", "updated_at"])
    logger.warning("Authorization %s: %s", authorization.pk, authorization.last_error)
    return False
