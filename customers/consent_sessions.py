"""Consent sessions of the company's app: create the single-use link, spend it when the
browser opens it, and build the return URL the browser is sent to after PG&E's callback.

Rules:
- The link's token is `secrets.token_urlsafe(32)`, stored as its SHA-256, valid
  `GASCAP_CONSENT_SESSION_TTL` seconds (30 minutes), spent once by a conditional UPDATE.
- `return_url` must be an absolute http(s) URL whose origin (scheme, host, port) is on
  `GASCAP_APP_RETURN_ORIGINS`, with no user info and no fragment: the browser is sent there
  with `consent_id` and `status`, so anything else would be an open redirect (docs/reliability.md
  R7, test 50).
- The customer is found by `external_id` when the callback completes (`customer_for_external_id`):
  a re-consent by the same `external_id` joins the same customer.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction

from customers.models import Authorization, ConsentSession, Customer

logger = logging.getLogger(__name__)

EXTERNAL_ID_MAX_CHARS = 200
RETURN_URL_MAX_CHARS = 2000


class ConsentSessionInvalid(ValueError):
    """The app asked for a session that cannot be made; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ConsentSessionRejected(Exception):
    """The link is unknown, spent or expired (`reason`); the page is the same for each."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"consent session rejected: {reason}")
        self.reason = reason


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _origin(scheme: str, host: str, port: int | None) -> str:
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def return_url_check(value: str) -> str:
    """`value` when it is on an allowed origin; raises ConsentSessionInvalid otherwise."""
    if not value or len(value) > RETURN_URL_MAX_CHARS:
        raise ConsentSessionInvalid("return_url", "return_url is missing or too long")
    if any(ord(char) < 33 or char == "\\" for char in value):
        raise ConsentSessionInvalid("return_url", "return_url contains forbidden characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConsentSessionInvalid("return_url", "return_url is not a URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConsentSessionInvalid("return_url", "return_url must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConsentSessionInvalid("return_url", "return_url must not carry user info")
    if parts.fragment:
        raise ConsentSessionInvalid("return_url", "return_url must not carry a fragment")
    allowed = {origin.rstrip("/").lower() for origin in settings.GASCAP_APP_RETURN_ORIGINS}
    if _origin(parts.scheme, parts.hostname.lower(), port) not in allowed:
        raise ConsentSessionInvalid(
            "return_url", "return_url is not on an allowed origin (GASCAP_APP_RETURN_ORIGINS)"
        )
    return value


def consent_session_create(
    *, external_id: str, return_url: str, now: datetime
) -> tuple[ConsentSession, str]:
    """A new session and its link token (returned once; only its digest is stored)."""
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > EXTERNAL_ID_MAX_CHARS:
        raise ConsentSessionInvalid(
            "external_id", f"external_id must be 1 to {EXTERNAL_ID_MAX_CHARS} characters"
        )
    if any(ord(char) < 32 for char in external_id):
        raise ConsentSessionInvalid("external_id", "external_id contains control characters")
    return_url_check(return_url)
    token = secrets.token_urlsafe(32)
    session = ConsentSession.objects.create(
        token_hash=_sha256(token),
        external_id=external_id,
        return_url=return_url,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.GASCAP_CONSENT_SESSION_TTL),
    )
    return session, token


def consent_session_spend(*, token: str, now: datetime) -> ConsentSession:
    """Spend the link `token` (once); raises ConsentSessionRejected."""
    if not token or len(token) > 200:
        raise ConsentSessionRejected("missing")
    session = ConsentSession.objects.filter(token_hash=_sha256(token)).first()
    if session is None:
        raise ConsentSessionRejected("unknown")
    if session.used_at is not None:
        raise ConsentSessionRejected("used")
    if now >= session.expires_at:
        raise ConsentSessionRejected("expired")
    with transaction.atomic():
        spent = ConsentSession.objects.filter(pk=session.pk, used_at__isnull=True).update(
            used_at=now
        )
    if spent != 1:
        raise ConsentSessionRejected("used")
    session.used_at = now
    return session


def customer_for_external_id(*, external_id: str, subscription_id: str) -> Customer:
    """The customer a consent by the app's user `external_id` belongs to (call in a transaction).

    The same external_id always means the same customer. A subscription that consented before
    without an external_id (plain /consent/start/) is adopted by it.
    """
    customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
    if customer is not None:
        return customer
    existing = (
        Authorization.objects.select_related("customer")
        .filter(subscription_id=subscription_id, customer__external_id__isnull=True)
        .first()
    )
    if existing is not None:
        Customer.objects.filter(pk=existing.customer_id).update(external_id=external_id)
        existing.customer.external_id = external_id
        return existing.customer
    return Customer.objects.create(
        display_name=f"App user {external_id}"[:200], external_id=external_id
    )


def consent_session_finish(
    *, session: ConsentSession, status: str, authorization: Authorization | None
) -> str:
    """Record the outcome and return the URL the browser goes to (return_url + result)."""
    session.outcome = status
    session.authorization = authorization
    session.save(update_fields=["outcome", "authorization"])
    parts = urlsplit(session.return_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k not in ("consent_id", "status")]
    if authorization is not None:
        query.append(("consent_id", str(authorization.public_id)))
    query.append(("status", status))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
