"""Optional error reporting to Sentry (`SENTRY_DSN`), with a scrubber that removes what must
never leave the machine: access and refresh tokens, OAuth codes (`code=`), Authorization
headers, the PG&E client secret, the notify token and the Fernet keys.

sentry-sdk already drops cookies, request bodies and user data with `send_default_pii=False`
and filters a list of key names; `scrub_event` adds gascap's secrets by name (any key that
names a token, code, secret, key, password or authorization) and by value (the configured
secrets found inside any string: an exception message, a URL, a local variable), and rewrites
`code=` / `access_token=` query parameters and `Bearer` credentials in text. It runs as
`before_send` and `before_send_transaction`, and on breadcrumbs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FILTERED", "scrub_event", "scrubber_build", "sentry_init"]

FILTERED = "[Filtered]"

# Key names whose value is a secret wherever they appear (headers, query dicts, frame locals).
# Over-filtering a harmless "token_binding" is the price of never missing a token.
_SECRET_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "fernet",
    "encryption_key",
    "credential",
    "dsn",
)
_SECRET_NAMES = frozenset({"code", "state", "key", "keys"})
# In free text: query parameters carrying credentials, Bearer / Basic credentials, and
# anything shaped like a Fernet key (32 bytes, urlsafe base64: 43 characters and "=").
_TEXT_PATTERNS = (
    re.compile(
        r"((?:code|access_token|refresh_token|client_secret|token|state)=)[^&\s'\"]+",
        re.IGNORECASE,
    ),
    re.compile(r"((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(r"()\b[A-Za-z0-9_-]{43}="),
)


def _key_is_secret(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower().replace("-", "_")
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def scrubber_build(secrets: Iterable[str]) -> Any:
    """A scrub function that also replaces each literal secret (4+ characters) in text."""
    literals = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(value: str) -> str:
        for literal in literals:
            if literal in value:
                value = value.replace(literal, FILTERED)
        for pattern in _TEXT_PATTERNS:
            value = pattern.sub(lambda m: m.group(1) + FILTERED, value)
        return value

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return {
                k: (FILTERED if _key_is_secret(k) and v not in (None, "") else scrub(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            # Header lists come as [name, value] pairs.
            if len(value) == 2 and _key_is_secret(value[0]) and isinstance(value[1], str):
                return [value[0], FILTERED]
            return [scrub(v) for v in value]
        return value

    return scrub


def _configured_secrets() -> list[str]:
    from django.conf import settings

    values: list[str] = [
        getattr(settings, "GASCAP_PGE_CLIENT_SECRET", ""),
        getattr(settings, "SECRET_KEY", ""),
        *getattr(settings, "GASCAP_NOTIFY_TOKENS", []),
        *getattr(settings, "GASCAP_FIELD_ENCRYPTION_KEYS", []),
        *getattr(settings, "GASCAP_METRICS_TOKENS", []),
        getattr(settings, "GASCAP_OPS_WEBHOOK_SECRET", ""),
    ]
    for pair in getattr(settings, "GASCAP_NOTIFY_BASIC_CREDENTIALS", []):
        values.extend(pair.split(":", 1))
    return [v for v in values if isinstance(v, str)]


def _named_secret_values(value: Any, found: list[str]) -> None:
    """Values held under secret names anywhere in the event (a frame's `refresh_token`
    local, say): the same value is then replaced wherever else it appears (a message)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if _key_is_secret(key) and isinstance(item, str):
                text = item.strip("'\"")
                if len(text) >= 8:
                    found.append(text)
            else:
                _named_secret_values(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _named_secret_values(item, found)


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """`before_send`: the event with every secret replaced by "[Filtered]"."""
    try:
        secrets = _configured_secrets()
    except Exception:  # settings not configured (a bare script): patterns and names still apply
        secrets = []
    _named_secret_values(event, secrets)
    return scrubber_build(secrets)(event)


def _scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return scrub_event(crumb, hint)


def sentry_init(
    *, dsn: str, environment: str, release: str = "", traces_sample_rate: float = 0.0, **extra: Any
) -> None:
    """Start sentry-sdk (Django, Celery and logging integrations are enabled automatically)."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        # send_default_pii stays at its default (off): no cookies, user or request bodies.
        max_request_body_size="never",
        include_local_variables=True,
        traces_sample_rate=traces_sample_rate,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=_scrub_breadcrumb,
        **extra,
    )
