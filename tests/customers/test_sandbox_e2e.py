"""Consent, exchange, refresh, revocation and poll against the local sandbox over real mutual
TLS: the real PgeClient, real certificates, a counterpart that shares none of our code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from django.utils import timezone

from customers.authorization_sync import authorization_revoke, authorizations_poll
from customers.models import Authorization
from customers.tokens import (
    AuthorizationUnavailable,
    access_token_for_subscription,
    client_access_token,
)
from sandbox.certs import CertPaths, certs_ensure
from sandbox.config import sandbox_config
from sandbox.demo import customer_by_key
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

REDIRECT_URI = "http://testserver/consent/callback/"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    paths, _ = certs_ensure(directory=tmp_path_factory.mktemp("customers-certs"))
    return paths


@pytest.fixture
def sandbox(certs: CertPaths, settings) -> Iterator[SandboxServer]:
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url="http://127.0.0.1:9/unused/",
        redirect_uris=(REDIRECT_URI,),
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        bulk_id="50098",
    )
    server = SandboxServer(SandboxState(), config).start()
    settings.GASCAP_PGE_API_BASE = server.api_base
    settings.GASCAP_PGE_TOKEN_URL = f"{server.base_url}/datacustodian/oauth/v2/token"
    settings.GASCAP_PGE_AUTHORIZE_URL = f"{server.base_url}/myAuthorization"
    settings.GASCAP_PGE_CA_BUNDLE = str(certs.ca)
    settings.GASCAP_PGE_CLIENT_CERT = str(certs.client_cert)
    settings.GASCAP_PGE_CLIENT_KEY = str(certs.client_key)
    settings.GASCAP_PGE_CLIENT_ID = "sandbox-client"
    settings.GASCAP_PGE_CLIENT_SECRET = "sandbox-secret"
    settings.GASCAP_PGE_REDIRECT_URI = REDIRECT_URI
    settings.GASCAP_CONSENT_AUTHORIZATION_RETRY_SECONDS = 0
    yield server
    server.stop()


def browser(certs: CertPaths) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(certs.ca)
    return session


def consent_through_sandbox(
    client: Client, certs: CertPaths, *, customer: str, decision: str = "approve"
):
    """Our start page → the sandbox's consent page (a customer clicks) → our callback."""
    start = client.get("/consent/start/")
    assert start.status_code == 302
    consent_url = start["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(consent_url).query).items()}
    page = browser(certs).post(
        consent_url.split("?")[0],
        data={**params, "customer": customer, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert page.status_code == 302, page.text
    back = urlsplit(page.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT_URI
    return client.get(back.path, parse_qs(back.query))


def test_consent_against_the_sandbox_stores_an_active_authorization(
    sandbox, certs, sent_tasks, django_capture_on_commit_callbacks
):
    expected = customer_by_key("electric")
    with django_capture_on_commit_callbacks(execute=True):
        response = consent_through_sandbox(Client(), certs, customer="electric")
    assert response.status_code == 303
    assert "code=" not in response["Location"]
    authorization = Authorization.objects.get()
    assert authorization.subscription_id == expected.subscription_id
    assert authorization.status == Authorization.Status.ACTIVE
    assert authorization.access_token and authorization.refresh_token
    assert authorization.authorized_start is not None
    assert authorization.scope_params.get("FB")
    assert sent_tasks == [("ingest.subscription_request", [authorization.pk], "pge_fetch")]


def test_cancel_at_the_sandbox_shows_the_cancelled_page(sandbox, certs):
    response = consent_through_sandbox(Client(), certs, customer="electric", decision="deny")
    assert response.status_code == 200
    assert b"Consent cancelled" in response.content
    assert not Authorization.objects.exists()


def test_refresh_against_the_sandbox_rotates_the_refresh_token(
    sandbox, certs, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        consent_through_sandbox(Client(), certs, customer="gas")
    authorization = Authorization.objects.get()
    first_access, first_refresh = authorization.access_token, authorization.refresh_token
    now = timezone.now() + timedelta(minutes=58)  # inside the skew margin
    token = access_token_for_subscription(subscription_id=authorization.subscription_id, now=now)
    stored = Authorization.objects.get()
    assert token != first_access and token == stored.access_token
    # The sandbox rotates refresh tokens (as PG&E may): the new one is what we keep.
    assert stored.refresh_token and stored.refresh_token != first_refresh
    # The token works at the sandbox's data API over mTLS.
    answer = browser(certs).get(
        f"{sandbox.api_base}Subscription/{authorization.subscription_id}/UsagePoint",
        headers={"Authorization": f"Bearer {token}"},
        cert=(str(certs.client_cert), str(certs.client_key)),
        timeout=10,
    )
    assert answer.status_code == 200
    # A spent refresh token is refused with invalid_grant: the consent needs re-consent.
    stored.token_write("refresh_token_encrypted", first_refresh)
    stored.save(update_fields=["refresh_token_encrypted"])
    with pytest.raises(AuthorizationUnavailable):
        access_token_for_subscription(
            subscription_id=stored.subscription_id, now=now + timedelta(hours=2)
        )
    assert Authorization.objects.get().status == Authorization.Status.NEEDS_RECONSENT


def test_revoke_and_poll_against_the_sandbox(
    sandbox, certs, sent_tasks, django_capture_on_commit_callbacks
):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        consent_through_sandbox(client, certs, customer="electric")
        consent_through_sandbox(client, certs, customer="solar")
    electric = Authorization.objects.get(
        subscription_id=customer_by_key("electric").subscription_id
    )
    solar = Authorization.objects.get(subscription_id=customer_by_key("solar").subscription_id)
    now = timezone.now()
    assert client_access_token(now=now)

    authorization_revoke(authorization_id=electric.pk, now=now)
    assert Authorization.objects.get(pk=electric.pk).status == Authorization.Status.REVOKED

    counts = authorizations_poll(now=now)
    assert counts["applied"] >= 2
    assert Authorization.objects.get(pk=electric.pk).status == Authorization.Status.REVOKED
    assert Authorization.objects.get(pk=solar.pk).status == Authorization.Status.ACTIVE
    assert Authorization.objects.get(pk=electric.pk).pge_status == 0


def test_poll_against_the_sandbox_keeps_an_open_ended_consent_long_after_its_token_expired(
    sandbox, certs, sent_tasks, django_capture_on_commit_callbacks
):
    """The sandbox serves Authorization as PG&E does (`expires_at` = the access token's
    expiry, an open-ended authorizedPeriod): a poll 400 days later ends nothing, and the next
    fetch refreshes the token and gets data over mTLS."""
    with django_capture_on_commit_callbacks(execute=True):
        consent_through_sandbox(Client(), certs, customer="electric")
    authorization = Authorization.objects.get()
    assert authorization.authorized_start is not None and authorization.authorized_end is None
    token_expiry = authorization.access_token_expires_at
    # PG&E's `expires_at` is this token's expiry (whole seconds in the XML).
    assert abs((authorization.expires_at - token_expiry).total_seconds()) <= 1

    later = timezone.now() + timedelta(days=400)
    counts = authorizations_poll(now=later)
    assert counts["applied"] == 1
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.access_token and stored.refresh_token

    token = access_token_for_subscription(subscription_id=stored.subscription_id, now=later)
    assert token != authorization.access_token  # refreshed: the old one had expired
    answer = browser(certs).get(
        f"{sandbox.api_base}Subscription/{stored.subscription_id}/UsagePoint",
        headers={"Authorization": f"Bearer {token}"},
        cert=(str(certs.client_cert), str(certs.client_key)),
        timeout=10,
    )
    assert answer.status_code == 200
