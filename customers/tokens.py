"""The token lifecycle: customer and client-credentials tokens, refresh under a row lock, and
the move to NEEDS_RECONSENT when PG&E refuses a refresh.

Customer tokens are refreshed lazily, when work needs one (`access_token_for_subscription`),
never by a sweep of all tokens: a refresh is a PG&E call, and PG&E's daily budget
(docs/pge-protocol.md, "Rate limits") would not survive ~24 refreshes per customer a day.

Used by ingest (docs/architecture.md): `access_token_for_subscription`, `client_access_token`,
`AuthorizationUnavailable`; a call made with these tokens goes through
`customers.authorized_calls.pge_call_authorized`. `pge_client()` is the customers' seam to the
configured PG&E client.

Rules (docs/reliability.md R6, tests 54-56):
- Refresh holds `SELECT ... FOR UPDATE` on the authorization and re-checks the expiry after the
  lock, so of many workers that found the token expired only the first calls PG&E; the rest
  read the token it stored. PG&E may rotate the refresh token; when it returns none the old
  one is kept (docs/pge-protocol.md, "Refresh").
- `invalid_grant` (the consent is gone at PG&E) or a 403 with a freshly refreshed token move
  the authorization to NEEDS_RECONSENT, record why on the row and log one error: no retry loop.
- Tokens never appear in logs, exception messages or task arguments.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from customers.consent_events import consent_status_event
from customers.models import Authorization, ClientToken
from gascap.crashpoints import crash_point
from gascap.pge.errors import PgeAuthError, PgeError
from ops.metrics import token_refresh_record

if TYPE_CHECKING:
    from gascap.pge.client import PgeClient

logger = logging.getLogger(__name__)

Status = Authorization.Status
USABLE_STATUSES = (Status.ACTIVE,)
ERROR_MAX_CHARS = 1000


class AuthorizationUnavailable(Exception):
    """No usable customer token: unknown subscription, revoked, expired or needs re-consent.

    `reason` is a short machine code ("unknown", "revoked", "expired", "needs_reconsent",
    "pending", "no_token"). Work for this subscription should stop, not retry.
    """

    def __init__(self, reason: str, subscription_id: str | None = None) -> None:
        super().__init__(f"authorization {subscription_id or '?'} unavailable: {reason}")
        self.reason = reason
        self.subscription_id = subscription_id


def pge_client() -> PgeClient:
    """The configured PG&E client (a seam: imported lazily so Django settings decide)."""
    from gascap.pge_settings import pge_client as build

    return build()


def _skew() -> timedelta:
    return timedelta(seconds=settings.GASCAP_TOKEN_REFRESH_SKEW)


def _force_min_age() -> timedelta:
    return timedelta(seconds=settings.GASCAP_TOKEN_FORCE_REFRESH_MIN_AGE)


def _unavailable_reason(authorization: Authorization) -> str | None:
    if authorization.status == Status.ACTIVE:
        return None if authorization.refresh_token_encrypted else "no_token"
    return {
        Status.PENDING: "pending",
        Status.REVOKED: "revoked",
        Status.EXPIRED: "expired",
        Status.NEEDS_RECONSENT: "needs_reconsent",
    }[Status(authorization.status)]


def _error_text(exc: BaseException) -> str:
    # PgeError messages are redacted by the client; others are cut to a readable length.
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def authorization_mark_needs_reconsent(
    *, authorization: Authorization, reason: str, now: datetime
) -> None:
    """Stop work for this consent and tell the operator why (admin row + one error log)."""
    previous = authorization.status
    authorization.status = Status.NEEDS_RECONSENT
    authorization.last_error = reason[:ERROR_MAX_CHARS]
    authorization.last_error_at = now
    with transaction.atomic():
        authorization.save(update_fields=["status", "last_error", "last_error_at", "updated_at"])
        consent_status_event(authorization=authorization, previous=previous, now=now)
    # Operator alert: an error-level log, once per transition.
    logger.error(
        "Authorization %s (subscription %s) needs re-consent: %s",
        authorization.pk,
        authorization.subscription_id,
        reason,
    )


def _refresh_should_keep(authorization: Authorization, *, now: datetime, force: bool) -> bool:
    """The row's token is fresh enough that no refresh is needed (re-checked under the lock)."""
    if force:
        return (
            authorization.last_refreshed_at is not None
            and authorization.last_refreshed_at > now - _force_min_age()
            and authorization.access_token_fresh(now=now, skew=timedelta(0))
        )
    return authorization.access_token_fresh(now=now, skew=_skew())


def _refresh_intent_record(
    *, authorization_id: int, now: datetime, force: bool
) -> tuple[datetime | None, bool]:
    """Commit, before the request leaves, that a refresh is about to be sent to PG&E.

    Returns (the marker an earlier attempt left or None, whether this call set one). A
    marker left by an attempt that never stored PG&E's answer is how a later invalid_grant is
    told apart from a consent revoked at PG&E (docs/reliability.md test 55)."""
    with transaction.atomic():
        authorization = Authorization.objects.select_for_update().get(pk=authorization_id)
        reason = _unavailable_reason(authorization)
        if reason:
            raise AuthorizationUnavailable(reason, authorization.subscription_id)
        earlier = authorization.refresh_sent_at
        if earlier is not None or _refresh_should_keep(authorization, now=now, force=force):
            return earlier, False
        Authorization.objects.filter(pk=authorization_id).update(refresh_sent_at=now)
    return None, True


def authorization_refresh(
    *, authorization_id: int, now: datetime, force: bool = False
) -> Authorization:
    """Refresh the customer token under a row lock; return the row with the current token.

    Without `force`, a token still fresh after the lock was acquired is returned as is (another
    worker refreshed it). With `force` (after a 403), a token refreshed within
    GASCAP_TOKEN_FORCE_REFRESH_MIN_AGE is kept for the same reason.
    Raises AuthorizationUnavailable (needs re-consent and the like) or PgeError (transient).

    Crash safety: PG&E rotates refresh tokens, so an answer lost between PG&E and our commit
    spends the consent. `refresh_sent_at` is committed before the request (step 1) and
    cleared with the stored answer (step 2); an invalid_grant while an earlier marker is
    still set marks the consent NEEDS_RECONSENT with "refresh answer lost" as the reason,
    never a silent failure.
    """
    earlier_sent_at, marked = _refresh_intent_record(
        authorization_id=authorization_id, now=now, force=force
    )
    failure: BaseException | None = None
    with transaction.atomic():
        authorization = Authorization.objects.select_for_update().get(pk=authorization_id)
        reason = _unavailable_reason(authorization)
        if reason:
            raise AuthorizationUnavailable(reason, authorization.subscription_id)
        if _refresh_should_keep(authorization, now=now, force=force):
            if marked and authorization.refresh_sent_at == now:
                # Another worker stored a fresh token after our step 1: nothing was sent.
                authorization.refresh_sent_at = None
                authorization.save(update_fields=["refresh_sent_at"])
            return authorization
        try:
            answer = pge_client().refresh(refresh_token=authorization.refresh_token, now=now)
            crash_point("after_token_answer")
        except PgeAuthError as exc:
            authorization.refresh_sent_at = None  # PG&E answered: nothing is in flight
            authorization.save(update_fields=["refresh_sent_at"])
            if exc.invalid_grant:
                refused = f"Refresh refused by PG&E ({exc.code}): {exc}"
                if earlier_sent_at is not None:
                    refused = (
                        f"Refresh answer lost: a refresh sent at {earlier_sent_at.isoformat()} "
                        "never stored PG&E's answer (a crash or timeout between PG&E's answer "
                        "and our commit) and PG&E has since rotated the refresh token. " + refused
                    )
                authorization_mark_needs_reconsent(
                    authorization=authorization, reason=refused, now=now
                )
                failure = AuthorizationUnavailable("needs_reconsent", authorization.subscription_id)
            else:
                # 401 invalid_client and the like: our credentials, not the consent.
                authorization.last_error = f"Refresh refused: {_error_text(exc)}"
                authorization.last_error_at = now
                authorization.save(update_fields=["last_error", "last_error_at", "updated_at"])
                logger.error(
                    "Token refresh for authorization %s refused: %s", authorization.pk, exc.code
                )
                failure = exc
        except PgeError as exc:
            # Transient or configuration trouble: the consent is fine, the call is not. With
            # an HTTP answer PG&E did not rotate anything; without one (timeout, reset) it may
            # have, so the marker stays for the next attempt to judge.
            if exc.status is not None:
                authorization.refresh_sent_at = None
            authorization.last_error = f"Refresh failed: {_error_text(exc)}"
            authorization.last_error_at = now
            authorization.save(
                update_fields=["refresh_sent_at", "last_error", "last_error_at", "updated_at"]
            )
            logger.warning(
                "Token refresh for authorization %s failed: %s", authorization.pk, exc.code
            )
            failure = exc
        else:
            authorization.tokens_set(
                access_token=answer.access_token,
                # PG&E may omit the refresh token: keep the one we have.
                refresh_token=answer.refresh_token or authorization.refresh_token,
                expires_at=answer.expires_at,
            )
            authorization.last_refreshed_at = now
            authorization.refresh_sent_at = None
            if answer.scope:
                authorization.scope = answer.scope
                authorization.scope_params = answer.scope_params
            authorization.save()
            logger.info("Refreshed the token of authorization %s", authorization.pk)
    token_refresh_record(failure=failure)
    if failure is not None:
        raise failure
    return authorization


def access_token_for_subscription(
    *, subscription_id: str, now: datetime, force_refresh: bool = False
) -> str:
    """The customer access token for `subscription_id`, refreshed first when it expires within
    the skew margin or when forced. Raises AuthorizationUnavailable or PgeError."""
    authorization = Authorization.objects.filter(subscription_id=subscription_id).first()
    if authorization is None:
        raise AuthorizationUnavailable("unknown", subscription_id)
    reason = _unavailable_reason(authorization)
    if reason:
        raise AuthorizationUnavailable(reason, subscription_id)
    if force_refresh or not authorization.access_token_fresh(now=now, skew=_skew()):
        authorization = authorization_refresh(
            authorization_id=authorization.pk, now=now, force=force_refresh
        )
    token = authorization.access_token
    if not token:
        raise AuthorizationUnavailable("no_token", subscription_id)
    return token


def client_access_token(*, now: datetime, force_refresh: bool = False) -> str:
    """The client-credentials token, fetched under a row lock when stale or forced."""
    ClientToken.objects.get_or_create(pk=ClientToken.SINGLETON_PK)
    failure: BaseException | None = None
    with transaction.atomic():
        row = ClientToken.objects.select_for_update().get(pk=ClientToken.SINGLETON_PK)
        if force_refresh:
            keep = (
                row.last_refreshed_at is not None
                and row.last_refreshed_at > now - _force_min_age()
                and row.access_token_fresh(now=now, skew=timedelta(0))
            )
        else:
            keep = row.access_token_fresh(now=now, skew=_skew())
        if not keep:
            try:
                answer = pge_client().client_credentials(now=now)
            except PgeError as exc:
                row.last_error = _error_text(exc)
                row.last_error_at = now
                row.save(update_fields=["last_error", "last_error_at"])
                logger.error("Client-credentials token request failed: %s", exc.code)
                failure = exc
            else:
                row.token_write("access_token_encrypted", answer.access_token)
                row.access_token_expires_at = answer.expires_at
                row.scope = answer.scope or ""
                row.last_refreshed_at = now
                row.last_error = ""
                row.save()
    if failure is not None:
        raise failure
    token = row.access_token
    if not token:
        raise PgeError("PG&E returned an empty client token", code="empty_token")
    return token
