"""The rows and settings tests build, in one place: customers, consents (authorizations, with
tokens when a test needs them), stored notifications, settings that point the real PG&E client
at a mocked host, and a logged-in staff client with given permissions. Keyword-only, with
obviously synthetic defaults: a test names only what it checks. Each tier keeps its own values
(subscription ids, tokens) in its conftest and passes them here."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Permission, User
from django.test import Client

from customers.models import Authorization, Customer
from ingest.models import Notification


def customer_make(*, display_name: str = "Test Customer", **fields: Any) -> Customer:
    return Customer.objects.create(display_name=display_name, **fields)


def authorization_make(
    *,
    subscription_id: str | None = None,
    customer: Customer | None = None,
    status: str = Authorization.Status.ACTIVE,
    access_token: str | None = None,
    refresh_token: str | None = None,
    expires_at: datetime | None = None,
    **fields: Any,
) -> Authorization:
    """A consent, ACTIVE unless told; its own customer unless one is given. Tokens and their
    expiry are set (encrypted, as the consent flow stores them) only when a test passes any."""
    if customer is None:
        customer = customer_make(display_name=f"Subscription {subscription_id}")
    authorization = Authorization.objects.create(
        customer=customer, subscription_id=subscription_id, status=status, **fields
    )
    if (access_token, refresh_token, expires_at) != (None, None, None):
        authorization.tokens_set(
            access_token=access_token, refresh_token=refresh_token, expires_at=expires_at
        )
        authorization.save()
    return authorization


def notification_make(
    *,
    body: bytes,
    received_at: datetime,
    status: str = Notification.Status.RECEIVED,
    **fields: Any,
) -> Notification:
    """A notification as the webhook stores it: its body with that body's size and SHA-256."""
    return Notification.objects.create(
        status=status,
        received_at=received_at,
        body=body,
        body_size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        **fields,
    )


def pge_settings_fake(settings: Any, directory: Path, *, api_base: str, token_url: str) -> None:
    """Point the real PgeClient at a fake PG&E host answered by `responses`: its API base and
    token URL, and placeholder certificate files (`responses` answers before any TLS)."""
    cert = directory / "client.pem"
    key = directory / "client.key"
    cert.write_text("not a real certificate (responses answers before TLS)\n")
    key.write_text("not a real key\n")
    settings.GASCAP_PGE_API_BASE = api_base
    settings.GASCAP_PGE_TOKEN_URL = token_url
    settings.GASCAP_PGE_CLIENT_CERT = str(cert)
    settings.GASCAP_PGE_CLIENT_KEY = str(key)
    settings.GASCAP_PGE_CA_BUNDLE = None


def staff_client(username: str, *codenames: str) -> Client:
    """A test client logged in as a staff user (not a superuser) holding only `codenames`."""
    user = User.objects.create_user(username, f"{username}@example.test", "test-pass-staff")
    user.is_staff = True
    user.save()
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


SCALE_API_BASE = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"


def scale_bulk_document_make(*, first: int, end: int, days: list[date], today: date) -> bytes:
    """The sandbox scale mode's Bulk document for customers [first, end) over `days`."""
    from sandbox import feeds, scale

    parts = [
        feeds.FeedPart(customer, usage_point)
        for customer in scale.scale_customers(first, end)
        for usage_point in customer.usage_points
    ]
    return b"".join(
        feeds.usage_feed_chunks(
            api_base=SCALE_API_BASE,
            self_href=f"{SCALE_API_BASE}Batch/Bulk/50098",
            parts=parts,
            days=days,
            today=today,
        )
    )
