"""API key lifecycle: create (the plaintext is returned once), revoke, authenticate.

Keys look like `gascap_<43 url-safe characters>`. Only the SHA-256 of a key is stored; a
presented key is hashed and looked up by that digest (an indexed equality on a value the
caller cannot choose the hash of, so no timing oracle on the stored digest).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from api.models import ApiKey, ApiScope

KEY_PREFIX = "gascap_"
KEY_MAX_CHARS = 200
PREFIX_CHARS = 12
# `last_used_at` is written at most this often per key, so reads stay read-only.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyInvalid(ValueError):
    """A key could not be created as asked (unknown scope, empty name)."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def scopes_parse(value: str | Iterable[str]) -> list[str]:
    """Validated, de-duplicated scopes from "read,consent" or a list; raises ApiKeyInvalid."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes: list[str] = []
    for item in (part.strip() for part in items):
        if not item:
            continue
        if item not in ApiScope.values:
            raise ApiKeyInvalid(f"unknown scope {item!r} (known: {', '.join(ApiScope.values)})")
        if item not in scopes:
            scopes.append(item)
    if not scopes:
        raise ApiKeyInvalid("a key needs at least one scope")
    return scopes


def api_key_create(*, name: str, scopes: Iterable[str], now: datetime) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key (shown once, never stored)."""
    name = name.strip()
    if not name:
        raise ApiKeyInvalid("a key needs a name")
    scope_list = scopes_parse(list(scopes))
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name[:100],
        prefix=plaintext[:PREFIX_CHARS],
        key_hash=_digest(plaintext),
        scopes=",".join(scope_list),
        created_at=now,
    )
    return key, plaintext


def api_key_revoke(*, key: ApiKey, now: datetime) -> None:
    """Stop a key from authenticating (idempotent)."""
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
        key.revoked_at = now


def api_key_authenticate(*, presented: str, now: datetime) -> ApiKey | None:
    """The active key `presented` is, or None (unknown, malformed or revoked)."""
    if not presented or len(presented) > KEY_MAX_CHARS or not presented.startswith(KEY_PREFIX):
        return None
    key = ApiKey.objects.filter(key_hash=_digest(presented), revoked_at__isnull=True).first()
    if key is None:
        return None
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
