"""The OAuth `state` of the consent flow (reliability rule R7, test 49) and the `next` rule.

A state is random (`secrets.token_urlsafe(32)`), stored only as its SHA-256, bound to the
browser session through a random nonce kept in the session, single-use and valid for
`GASCAP_CONSENT_STATE_TTL` seconds (PG&E's code itself lives about 600 s). A session holds at
most `GASCAP_CONSENT_STATES_PER_SESSION` unspent states: a new one replaces the oldest, so a
visitor cannot pile up states (each a possible PG&E code exchange).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from urllib.parse import unquote

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction

from customers.models import ConsentSession, ConsentState, Customer

SESSION_NONCE_KEY = "gascap_consent_nonce"
NEXT_MAX_CHARS = 500


class ConsentStateRejected(Exception):
    """The callback's state is missing, unknown, reused, expired or from another session.

    `reason` is a short machine code for logs; the page shown is the same for every reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"consent state rejected: {reason}")
        self.reason = reason


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _session_nonce(session: SessionBase, *, create: bool) -> str | None:
    nonce = session.get(SESSION_NONCE_KEY)
    if nonce is None and create:
        nonce = secrets.token_urlsafe(32)
        session[SESSION_NONCE_KEY] = nonce
    return nonce


# Allowed characters of a same-site path: no backslash, no control characters, no "%"
# (so encoded slashes or backslashes cannot be decoded into "//host" later by anyone).
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*$")


def next_path_clean(value: str | None) -> str:
    """`value` when it is a same-site relative path, else "" (no open redirect, test 50).

    Accepted: "/" followed by path characters, never "//" at the start (a scheme-relative
    URL), never a backslash (browsers read "/\\host" as "//host"), never a percent-encoding
    (whose decoding could produce either), never a scheme.
    """
    if not value or len(value) > NEXT_MAX_CHARS:
        return ""
    if value.startswith("//") or "\\" in value or "%" in value:
        return ""
    if not _SAFE_PATH.match(value):
        return ""
    # Defence in depth: whatever decoding a proxy applies, the result still stays on-site.
    decoded = unquote(value)
    if decoded.startswith("//") or "\\" in decoded:
        return ""
    return value


def consent_state_create(
    *,
    session: SessionBase,
    now: datetime,
    customer: Customer | None = None,
    next_path: str | None = None,
    source: str = "start",
    consent_session: ConsentSession | None = None,
) -> str:
    """Create a fresh state bound to `session`; return the state value (shown to PG&E only)."""
    nonce = _session_nonce(session, create=True)
    assert nonce is not None  # noqa: S101  (created above)
    state = secrets.token_urlsafe(32)
    binding = _sha256(nonce)
    keep = max(1, int(settings.GASCAP_CONSENT_STATES_PER_SESSION)) - 1
    unspent = ConsentState.objects.filter(session_binding_hash=binding, used_at__isnull=True)
    stale = list(unspent.order_by("-created_at", "-pk").values_list("pk", flat=True)[keep:])
    if stale:
        ConsentState.objects.filter(pk__in=stale).delete()
    ConsentState.objects.create(
        state_hash=_sha256(state),
        session_binding_hash=binding,
        customer=customer,
        next_path=next_path_clean(next_path),
        source=source,
        consent_session=consent_session,
        created_at=now,
    )
    return state


def consent_state_consume(
    *, state: str | None, session: SessionBase, now: datetime
) -> ConsentState:
    """Validate and spend `state`. Raises ConsentStateRejected; a state is spent at most once.

    The single-use mark is a conditional UPDATE (`used_at IS NULL`), so two simultaneous
    callbacks with one state cannot both pass.
    """
    if not state or len(state) > 200:
        raise ConsentStateRejected("missing")
    nonce = _session_nonce(session, create=False)
    row = (
        ConsentState.objects.select_related("consent_session")
        .filter(state_hash=_sha256(state))
        .first()
    )
    if row is None:
        raise ConsentStateRejected("unknown")
    if nonce is None or not hmac.compare_digest(row.session_binding_hash, _sha256(nonce)):
        raise ConsentStateRejected("foreign_session")
    if row.used_at is not None:
        raise ConsentStateRejected("reused")
    ttl = timedelta(seconds=settings.GASCAP_CONSENT_STATE_TTL)
    if now - row.created_at > ttl or now < row.created_at - timedelta(seconds=60):
        raise ConsentStateRejected("expired")
    with transaction.atomic():
        spent = ConsentState.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now)
    if spent != 1:
        raise ConsentStateRejected("reused")
    row.used_at = now
    return row


def consent_states_purge(*, now: datetime) -> int:
    """Delete states older than a day (spent or expired); returns how many."""
    deleted, _ = ConsentState.objects.filter(created_at__lt=now - timedelta(days=1)).delete()
    return deleted
