"""OAuth2 token answers from PG&E's token endpoint, parsed into `TokenResponse`.

PG&E answers JSON (`access_token`, `refresh_token`, `token_type`, `expires_in` 3600, `scope`,
`resourceURI`, `authorizationURI`); the client-credentials grant puts the token under
`client_access_token` instead, normalised here into `access_token`. The test endpoint has
been seen answering XML, so the body is parsed by content type (docs/pge-protocol.md, "OAuth2").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from gascap.pge.errors import PgePermanentError
from gascap.pge.safexml import parse_small_answer

# PG&E documents expires_in = 3600 for every grant; used only if an answer omits it.
DEFAULT_EXPIRES_IN = 3600


def parse_scope(scope: str | None) -> dict[str, list[str]]:
    """`FB=1_3_4;IntervalDuration=900_3600;` → `{"FB": ["1", "3", "4"], ...}`.

    Semicolon-separated `key=value`, lists joined by `_`, a trailing `;` allowed.
    """
    params: dict[str, list[str]] = {}
    for item in (scope or "").split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        values = [v for v in value.strip().split("_") if v]
        params.setdefault(key.strip(), []).extend(values)
    return params


def subscription_id_from_uri(uri: str | None) -> str | None:
    """The last path segment of `.../Subscription/{SID}` or `.../Authorization/{SID}`."""
    if not uri:
        return None
    path = uri.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    segment = path.rsplit("/", 1)[-1]
    return segment or None


@dataclass(frozen=True, repr=False)
class TokenResponse:
    """A token answer. `expires_at` is absolute (aware UTC); `repr()` never shows tokens."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_type: str
    expires_in: int
    expires_at: datetime
    scope: str = ""
    scope_params: dict[str, list[str]] = field(default_factory=dict)
    resource_uri: str | None = None
    authorization_uri: str | None = None
    subscription_id: str | None = None
    # Every field PG&E sent, tokens included, for the seed SDK's dict; never shown in repr.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"TokenResponse(token_type={self.token_type!r}, expires_at={self.expires_at!r}, "
            f"scope={self.scope!r}, subscription_id={self.subscription_id!r}, "
            f"refresh_token={'present' if self.refresh_token else 'absent'})"
        )

    __str__ = __repr__


def token_fields(body: bytes, content_type: str) -> dict[str, Any]:
    """The answer's fields from JSON or XML (by content type, then by first character)."""
    stripped = body.strip()
    kind = content_type.lower()
    if "xml" in kind or (stripped.startswith(b"<") and "json" not in kind):
        root = parse_small_answer(stripped, what="token answer")
        fields: dict[str, Any] = {}
        for element in root.iter():
            if isinstance(element.tag, str) and len(element) == 0 and element.text:
                fields.setdefault(etree.QName(element).localname, element.text.strip())
        return fields
    try:
        data = json.loads(stripped.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise PgePermanentError("token answer is neither JSON nor XML", code="malformed") from None
    if not isinstance(data, dict):
        raise PgePermanentError("token answer is not a JSON object", code="malformed")
    return data


def token_response_build(fields: dict[str, Any], *, now: datetime) -> TokenResponse:
    """A `TokenResponse` from PG&E's fields; `now` (aware) anchors the absolute expiry."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    access_token = fields.get("access_token") or fields.get("client_access_token")
    if not isinstance(access_token, str) or not access_token:
        raise PgePermanentError("token answer carries no access token", code="malformed")
    try:
        expires_in = int(fields.get("expires_in") or DEFAULT_EXPIRES_IN)
    except (TypeError, ValueError):
        raise PgePermanentError(
            "token answer has a non-numeric expires_in", code="malformed"
        ) from None
    scope = str(fields.get("scope") or "")
    resource_uri = fields.get("resourceURI") or None
    authorization_uri = fields.get("authorizationURI") or None
    refresh_token = fields.get("refresh_token") or None
    return TokenResponse(
        access_token=access_token,
        refresh_token=str(refresh_token) if refresh_token else None,
        token_type=str(fields.get("token_type") or "Bearer"),
        expires_in=expires_in,
        expires_at=now + timedelta(seconds=expires_in),
        scope=scope,
        scope_params=parse_scope(scope),
        resource_uri=str(resource_uri) if resource_uri else None,
        authorization_uri=str(authorization_uri) if authorization_uri else None,
        subscription_id=subscription_id_from_uri(resource_uri or authorization_uri),
        raw=dict(fields),
    )
