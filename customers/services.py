"""The token lifecycle: customer and client-credentials tokens, refresh under a row lock,
re-consent, revocation, the daily Authorization poll, and the first-data-request enqueue.

Customer tokens are refreshed lazily, when work needs one (`access_token_for_subscription`),
never by a sweep of all tokens: a refresh is a PG&E call, and PG&E's daily budget
(docs/pge-protocol.md, "Rate limits") would not survive ~24 refreshes per customer a day.

Contract used by ingest (docs/architecture.md): `pge_call_authorized` (the one 403 → refresh →
retry → report rule), `access_token_for_subscription`, `client_access_token`,
`authorization_report_forbidden`, `AuthorizationUnavailable`, `CallForbidden`.

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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from celery import current_app
from django.conf import settings
from django.db import transaction

from customers.consent_events import consent_status_event
from customers.models import Authorization, ClientToken, SubscriptionUsagePoint
from gascap.crashpoints import crash_point
from gascap.pge.errors import PgeAuthError, PgeError
from ops.metrics import token_refresh_record

if TYPE_CHECKING:
    from gascap.pge.client import PgeClient

logger = logging.getLogger(__name__)
T = TypeVar("T")

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


def subscription_request_enqueue(*, authorization_id: int) -> None:
    """After commit, ask ingest (by task name, no import) for the subscription's data.

    A broker failure is logged, not raised: the daily data request picks the consent up.
    """

    def publish() -> None:
        try:
            current_app.send_task(
                "ingest.subscription_request", args=[authorization_id], queue="pge_fetch"
            )
        except Exception:
            logger.exception(
                "Could not enqueue the data request for authorization %s", authorization_id
            )

    transaction.on_commit(publish)


# ServiceCategory/kind codes (docs/espi-model.md §4.1): 0 electricity, 1 gas. PG&E's Authorization
# resource names the subscription, not its usage points' kinds (often not even the usage
# points), so rows start as "other" or are missing until data arrives.
_ESPI_SERVICE_KINDS = {
    0: SubscriptionUsagePoint.ServiceKind.ELECTRIC,
    1: SubscriptionUsagePoint.ServiceKind.GAS,
}


def subscription_usage_points_record_kinds(*, authorization_id: int, kinds: dict[str, int]) -> int:
    """Record the service kind PG&E's data gave each of the authorization's usage points
    (`kinds` maps usage point id -> ESPI ServiceCategory kind; ingest passes only usage
    points bound to this authorization by the fetch). A usage point the Authorization
    resource did not list is added: the data proves the consent covers it. Codes other than
    electricity/gas leave the kind as it is. An unknown authorization changes nothing.
    Returns how many rows were added or changed.

    The first data of a re-consent (a new subscription id) joins the customer whose earlier
    consent covered the same usage points (`authorization_customer_rejoin`)."""
    return subscription_usage_points_record_kinds_many(kinds={authorization_id: kinds})


def subscription_usage_points_record_kinds_many(*, kinds: dict[int, dict[str, int]]) -> int:
    """`subscription_usage_points_record_kinds` for several authorizations at once (`kinds`:
    authorization id -> usage point id -> code): a Bulk document binds 500 of them, and a
    handful of statements serve them all (one select of the rows, one insert, one update,
    the re-consent check in two selects) instead of several per usage point."""
    authorizations = {
        a.pk: a for a in Authorization.objects.filter(pk__in=list(kinds)).select_related("customer")
    }
    if not authorizations:
        return 0
    existing = {
        (row.authorization_id, row.usage_point_id): row
        for row in SubscriptionUsagePoint.objects.filter(authorization_id__in=list(authorizations))
    }
    added: list[SubscriptionUsagePoint] = []
    changed: list[SubscriptionUsagePoint] = []
    for authorization_id, per_usage_point in kinds.items():
        if authorization_id not in authorizations:
            continue
        for usage_point_id, code in per_usage_point.items():
            kind = _ESPI_SERVICE_KINDS.get(code, SubscriptionUsagePoint.ServiceKind.OTHER)
            row = existing.get((authorization_id, usage_point_id))
            if row is None:
                added.append(
                    SubscriptionUsagePoint(
                        authorization_id=authorization_id,
                        usage_point_id=usage_point_id,
                        service_kind=kind,
                    )
                )
            elif code in _ESPI_SERVICE_KINDS and row.service_kind != kind:
                row.service_kind = kind
                changed.append(row)
    if added:
        # A concurrent import of the same consent may add a row first: it stands.
        SubscriptionUsagePoint.objects.bulk_create(added, ignore_conflicts=True, batch_size=500)
    if changed:
        SubscriptionUsagePoint.objects.bulk_update(changed, ["service_kind"], batch_size=500)
    _customers_rejoin(
        [(authorizations[pk], list(points)) for pk, points in kinds.items() if pk in authorizations]
    )
    return len(added) + len(changed)


def _customers_rejoin(candidates: list[tuple[Authorization, list[str]]]) -> None:
    """`authorization_customer_rejoin` for several authorizations, its conditions checked for
    all of them at once; only an authorization that does move goes through it (rare)."""
    placeholders = [
        (authorization, usage_point_ids)
        for authorization, usage_point_ids in candidates
        if usage_point_ids
        and authorization.customer.display_name == f"Subscription {authorization.subscription_id}"
        and not authorization.customer.email
    ]
    if not placeholders:
        return
    consents: dict[int, int] = {}
    for customer_id in Authorization.objects.filter(
        customer_id__in=[a.customer_id for a, _ in placeholders]
    ).values_list("customer_id", flat=True):
        consents[customer_id] = consents.get(customer_id, 0) + 1
    placeholders = [(a, ids) for a, ids in placeholders if consents.get(a.customer_id) == 1]
    if not placeholders:
        return
    earlier = list(
        SubscriptionUsagePoint.objects.filter(
            usage_point_id__in=sorted({i for _, ids in placeholders for i in ids})
        )
        .exclude(authorization__status=Status.ACTIVE)
        .values_list("usage_point_id", "authorization__customer_id")
    )
    for authorization, usage_point_ids in placeholders:
        wanted = set(usage_point_ids)
        if any(
            point in wanted and customer_id != authorization.customer_id
            for point, customer_id in earlier
        ):
            authorization_customer_rejoin(
                authorization=authorization, usage_point_ids=usage_point_ids
            )


def authorization_customer_rejoin(
    *, authorization: Authorization, usage_point_ids: list[str]
) -> bool:
    """Give a re-consent's authorization the customer of the earlier consent it replaces.

    PG&E issues a new subscription id on re-consent (docs/pge-protocol.md: re-authorization
    cancels the old subscription), and the consent callback, knowing only that id, creates
    a placeholder customer. When this authorization is its customer's only one and an
    earlier, no longer ACTIVE authorization of another customer covers one of the same usage
    points (PG&E's usage point id is the service agreement), the authorization moves to that
    customer, so the customer's history (the old usage points and readings) and the new data
    are one customer's. The callback's placeholder customer is then removed.
    Returns True when the authorization moved.
    """
    if not usage_point_ids:
        return False
    placeholder = authorization.customer
    # Only the callback's placeholder (named after the subscription, no e-mail, no other
    # consent) is replaced: a customer an operator named or invited keeps its consent.
    if (
        placeholder.display_name != f"Subscription {authorization.subscription_id}"
        or placeholder.email
        or Authorization.objects.filter(customer=placeholder).exclude(pk=authorization.pk).exists()
    ):
        return False
    earlier = (
        SubscriptionUsagePoint.objects.filter(usage_point_id__in=usage_point_ids)
        .exclude(authorization__customer=placeholder)
        .exclude(authorization__status=Status.ACTIVE)
        .select_related("authorization__customer")
        .order_by("-authorization__created_at")
        .first()
    )
    if earlier is None:
        return False
    with transaction.atomic():
        authorization.customer = earlier.authorization.customer
        authorization.save(update_fields=["customer", "updated_at"])
        placeholder.delete()
    logger.info(
        "Authorization %s (re-consent) joined customer %s",
        authorization.pk,
        authorization.customer_id,
    )
    return True
