"""Webhook endpoints: create (the secret is returned once), read the signing secret.

The secret is encrypted at rest with the field keys tokens use (customers.crypto), bound to
the row, so a database dump or the admin never shows it (docs/reliability.md R6, R8).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from customers import crypto
from webhooks.models import EVENT_TYPES, WebhookEndpoint
from webhooks.signing import secret_generate

FIELD = "secret"


class EndpointInvalid(ValueError):
    """The URL or event types are not acceptable."""


def _binding(endpoint: WebhookEndpoint) -> str:
    return f"webhooks.endpoint:{endpoint.secret_binding}"


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return crypto.token_decrypt(endpoint.secret_encrypted, binding=_binding(endpoint), field=FIELD)


def event_types_clean(values: Iterable[str]) -> list[str]:
    types: list[str] = []
    for value in (v.strip() for v in values):
        if not value:
            continue
        if value not in EVENT_TYPES:
            raise EndpointInvalid(f"unknown event type {value!r} (known: {', '.join(EVENT_TYPES)})")
        if value not in types:
            types.append(value)
    return types


def url_check(url: str) -> str:
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.GASCAP_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise EndpointInvalid(f"the endpoint URL must be {' or '.join(allowed)} with a host")
    if parts.username or parts.password:
        raise EndpointInvalid("the endpoint URL must not carry credentials")
    return url


def endpoint_create(
    *, url: str, event_types: Iterable[str] = (), description: str = "", now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its `whsec_` secret (returned once)."""
    url_check(url)
    types = event_types_clean(event_types)
    secret = secret_generate()
    with transaction.atomic():
        endpoint = WebhookEndpoint(
            url=url,
            description=description[:200],
            event_types=types,
            secret_prefix=secret[:10],
            created_at=now,
        )
        endpoint.secret_encrypted = crypto.token_encrypt(
            secret, binding=_binding(endpoint), field=FIELD
        )
        endpoint.save()
    return endpoint, secret
