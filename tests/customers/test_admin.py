"""The operators' admin: pages render, tokens never appear nor are editable (reliability
test 52); actions refresh, request data and revoke (with confirmation)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from customers.models import Authorization, ClientToken, Customer, SubscriptionUsagePoint
from tests.customers.conftest import ACCESS_TOKEN, REFRESH_TOKEN, authorization_make

pytestmark = pytest.mark.django_db

CLIENT_TOKEN = "test-client-token-ADMIN-9999"
ADMIN = "/" + django_settings.GASCAP_ADMIN_PATH


@pytest.fixture
def rows(customer) -> Authorization:
    authorization = authorization_make(
        customer=customer, expires_at=timezone.now() + timedelta(hours=1)
    )
    SubscriptionUsagePoint.objects.create(
        authorization=authorization, usage_point_id="7700001", service_kind="gas"
    )
    token = ClientToken.objects.create(pk=ClientToken.SINGLETON_PK)
    token.token_write("access_token_encrypted", CLIENT_TOKEN)
    token.access_token_expires_at = timezone.now() + timedelta(hours=1)
    token.save()
    return authorization


@pytest.fixture
def superuser_client() -> Client:
    user = User.objects.create_superuser("op-super", "op@example.test", "test-pass-1")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client() -> Client:
    user = User.objects.create_user("op-viewer", "viewer@example.test", "test-pass-2")
    user.is_staff = True
    user.save()
    for codename in ("view_customer", "view_authorization", "view_clienttoken"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def admin_pages(authorization: Authorization) -> list[str]:
    return [
        f"{ADMIN}customers/customer/",
        f"{ADMIN}customers/customer/{authorization.customer_id}/change/",
        f"{ADMIN}customers/authorization/",
        f"{ADMIN}customers/authorization/?q=90000001",
        f"{ADMIN}customers/authorization/?status__exact=ACTIVE",
        f"{ADMIN}customers/authorization/{authorization.pk}/change/",
        f"{ADMIN}customers/clienttoken/",
        f"{ADMIN}customers/clienttoken/{ClientToken.SINGLETON_PK}/change/",
    ]


@pytest.mark.parametrize("who", ["superuser_client", "viewer_client"])
def test_admin_pages_render_without_any_token(request, rows, who):
    client = request.getfixturevalue(who)
    stored = Authorization.objects.get(pk=rows.pk)
    secrets = [
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        CLIENT_TOKEN,
        stored.access_token_encrypted,
        stored.refresh_token_encrypted,
        ClientToken.objects.get().access_token_encrypted,
    ]
    for url in admin_pages(rows):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, url
        assert "token_encrypted" not in html, url


def test_change_page_shows_what_an_operator_needs(superuser_client, rows):
    Authorization.objects.filter(pk=rows.pk).update(
        status=Authorization.Status.NEEDS_RECONSENT, last_error="PG&E refused: invalid_grant"
    )
    html = superuser_client.get(f"{ADMIN}customers/authorization/{rows.pk}/change/").content
    assert b"needs re-consent" in html
    assert b"PG&amp;E refused: invalid_grant" in html
    assert b"interval electricity (FB 4)" in html
    listing = superuser_client.get(f"{ADMIN}customers/authorization/").content
    assert b"needs re-consent" in listing


def test_token_fields_cannot_be_posted(superuser_client, rows):
    before = Authorization.objects.get(pk=rows.pk)
    superuser_client.post(
        f"{ADMIN}customers/authorization/{rows.pk}/change/",
        {
            "access_token_encrypted": "injected",
            "refresh_token_encrypted": "injected",
            "status": "REVOKED",
            "subscription_id": "1",
        },
    )
    after = Authorization.objects.get(pk=rows.pk)
    assert after.access_token_encrypted == before.access_token_encrypted
    assert after.refresh_token_encrypted == before.refresh_token_encrypted
    assert after.status == before.status
    assert after.access_token == ACCESS_TOKEN


def test_viewer_sees_no_actions_and_cannot_change(viewer_client, rows):
    listing = viewer_client.get(f"{ADMIN}customers/authorization/").content
    assert b"revoke_consent" not in listing
    assert b"refresh_tokens_now" not in listing
    response = viewer_client.post(
        f"{ADMIN}customers/customer/{rows.customer_id}/change/", {"display_name": "changed"}
    )
    assert response.status_code == 403
    assert Customer.objects.get().display_name == "Test Household A"


def action(client: Client, name: str, authorization: Authorization, **extra: str):
    return client.post(
        f"{ADMIN}customers/authorization/",
        {"action": name, "_selected_action": [str(authorization.pk)], **extra},
    )


def test_revoke_action_asks_first_then_deletes_and_erases(superuser_client, rows, pge):
    ClientToken.objects.all().delete()
    confirm = action(superuser_client, "revoke_consent", rows)
    assert confirm.status_code == 200
    assert b"Yes, revoke" in confirm.content
    assert pge.deletes == []
    assert Authorization.objects.get().status == Authorization.Status.ACTIVE

    done = action(superuser_client, "revoke_consent", rows, confirmed="yes")
    assert done.status_code == 302
    assert len(pge.deletes) == 1 and pge.deletes[0].endswith("/Authorization/90000001")
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.REVOKED
    assert stored.access_token_encrypted == "" and stored.refresh_token_encrypted == ""


def test_refresh_action_refreshes(superuser_client, rows, pge):
    response = action(superuser_client, "refresh_tokens_now", rows)
    assert response.status_code == 302
    assert pge.grant_count("refresh_token") == 1
    assert Authorization.objects.get().access_token == "test-access-token-NEW"


def test_request_data_action_sends_the_task_by_name(
    superuser_client, rows, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        action(superuser_client, "request_data_now", rows)
    assert sent_tasks == [("ingest.subscription_request", [rows.pk], "pge_fetch")]


def test_the_consent_end_is_its_authorized_period_not_pge_token_expiry(rows, superuser_client):
    """PG&E's Authorization `expires_at` is its access token's expiry: the admin labels it so
    and shows the consent's end from the authorized period (open-ended when it has none)."""
    rows.authorized_start = timezone.now() - timedelta(days=400)
    rows.authorized_end = None
    rows.expires_at = timezone.now() - timedelta(days=300)  # an old token's expiry
    rows.save()
    listing = superuser_client.get(f"{ADMIN}customers/authorization/").content.decode()
    assert "consent ends" in listing.lower() and "open-ended" in listing
    page = superuser_client.get(f"{ADMIN}customers/authorization/{rows.pk}/change/")
    text = page.content.decode()
    assert "access token expiry at pg&amp;e (authorization expires_at)" in text.lower()
    assert "open-ended" in text
    customer_page = superuser_client.get(f"{ADMIN}customers/customer/{rows.customer_id}/change/")
    assert "open-ended" in customer_page.content.decode()
