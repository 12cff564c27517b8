"""gascap's own PG&E client and parsers against the sandbox, over real mutual TLS: the two
sides were written independently, so agreement here is evidence, not an echo."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from gascap.pge.batchlist import parse_batchlist
from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig
from gascap.pge.espi import espi_read
from sandbox.certs import CertPaths
from sandbox.drive import consent_decide
from sandbox.readings import day_bounds
from sandbox.server import SandboxServer

from .conftest import REDIRECT_URI, Listener, sid

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(sandbox: SandboxServer, certs: CertPaths) -> PgeClient:
    config = PgeConfig(
        api_base=sandbox.api_base,
        token_url=f"{sandbox.base_url}/datacustodian/oauth/v2/token",
        authorize_url=f"{sandbox.base_url}/myAuthorization",
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        client_cert=str(certs.client_cert),
        client_key=str(certs.client_key),
        ca_bundle=str(certs.ca),
        redirect_uri=REDIRECT_URI,
    )
    return PgeClient(config)


def test_consent_async_request_notification_fetch_and_parse(
    client: PgeClient, certs: CertPaths, listener: Listener
) -> None:
    now = datetime.now(UTC)
    target = consent_decide(
        authorize_url=client.authorize_url(state="interop"),
        customer="solar",
        ca_bundle=str(certs.ca),
    )
    code = parse_qs(urlsplit(target).query)["code"][0]
    tokens = client.exchange_code(code=code, redirect_uri=REDIRECT_URI, now=now)
    assert tokens.subscription_id == sid("solar")
    start, _ = day_bounds(datetime(2025, 11, 1).date())
    _, end = day_bounds(datetime(2025, 11, 3).date())
    answer = client.request_subscription_async(
        subscription_id=sid("solar"),
        published_min=start,
        published_max=end,
        access_token=tokens.access_token,
    )
    assert (answer.status, answer.document) == (202, None)
    [url] = parse_batchlist(listener.wait_for(1)[0])
    assert client.is_allowed_url(url)
    document = client.fetch(url=url, access_token=tokens.access_token)
    _, series, rows = espi_read(document.open())
    directions = {s.reading_type.codes["flowDirection"] for s in series.values() if s.reading_type}
    assert directions == {1, 19}
    assert len(rows) == 2 * (24 + 25 + 24)  # Nov 1-3, the fall-back day has 25 hours

    refreshed = client.refresh(refresh_token=tokens.refresh_token, now=now)
    assert refreshed.refresh_token and refreshed.refresh_token != tokens.refresh_token


def test_client_credentials_bulk_authorizations_and_status(
    client: PgeClient, certs: CertPaths, listener: Listener
) -> None:
    now = datetime.now(UTC)
    target = consent_decide(
        authorize_url=client.authorize_url(state="bulk"), customer="gas", ca_bundle=str(certs.ca)
    )
    code = parse_qs(urlsplit(target).query)["code"][0]
    client.exchange_code(code=code, redirect_uri=REDIRECT_URI, now=now)
    token = client.client_credentials(now=now).access_token
    assert client.service_status(client_token=token) is True
    [info] = client.authorizations_list(client_token=token)
    assert (info.subscription_id, info.status) == (sid("gas"), 1)
    assert client.request_bulk(bulk_id="50098", client_token=token).status == 202
    [url] = parse_batchlist(listener.wait_for(1)[0])
    document = client.fetch(url=url, access_token=token)
    _, series, rows = espi_read(document.open())
    assert {s.reading_type.codes["uom"] for s in series.values() if s.reading_type} == {169}
    assert rows
    client.authorization_delete(subscription_id=sid("gas"), client_token=token)
    assert client.authorization_get(subscription_id=sid("gas"), client_token=token).status == 0
