"""The client over real mutual TLS: a loopback HTTPS server (trustme CAs) that requires a
client certificate, as PG&E does for every server-to-server call."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from gascap.pge.client import PgeClient
from gascap.pge.errors import PgeConfigurationError, PgeTransientError

ACCESS = "at-4d21-mtls-access"
FEED = b"<feed xmlns='http://www.w3.org/2005/Atom'><id>mtls</id></feed>"


def _feed(request: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/atom+xml"}, FEED


def test_the_right_client_certificate_succeeds(mtls_server, mtls_config) -> None:  # type: ignore[no-untyped-def]
    server = mtls_server(_feed)
    client = PgeClient(mtls_config(server))
    with client.fetch(
        url=server.api_base + "Batch/Bulk/50098?correlationID=1", access_token=ACCESS
    ) as doc:
        assert doc.status == 200 and doc.read() == FEED
    (request,) = server.requests
    assert request["headers"]["Authorization"] == f"Bearer {ACCESS}"
    # The server saw the certificate our client CA issued.
    assert ("DNS", "gascap-test-client") in request["peer_cert"]["subjectAltName"]


def test_token_request_over_mtls(mtls_server, mtls_config) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    server = mtls_server(
        lambda r: (
            200,
            {"Content-Type": "application/json"},
            b'{"client_access_token":"ct-1","expires_in":3600}',
        )
    )
    token = PgeClient(mtls_config(server)).client_credentials(now=datetime.now(UTC))
    assert token.access_token == "ct-1"
    assert server.requests[0]["headers"]["Authorization"].startswith("Basic ")


def test_a_certificate_from_another_ca_is_a_configuration_error(  # type: ignore[no-untyped-def]
    mtls_server, mtls_config, tls_cas
) -> None:
    server = mtls_server(_feed)
    stranger = tls_cas.client_cert_files(trustme.CA(), name="stranger")
    client = PgeClient(mtls_config(server, cert=stranger))
    with pytest.raises(PgeConfigurationError) as raised:
        client.fetch(url=server.api_base + "Batch/Bulk/50098", access_token=ACCESS)
    assert raised.value.code == "tls"
    assert "refused our client certificate" in str(raised.value)
    assert server.requests == []  # the request never reached the HTTP layer
    assert ACCESS not in str(raised.value)


def test_no_client_certificate_is_a_configuration_error_before_connecting(  # type: ignore[no-untyped-def]
    mtls_server, mtls_config, tmp_path: Path
) -> None:
    server = mtls_server(_feed)
    client = PgeClient(
        mtls_config(server, cert=(str(tmp_path / "no.crt"), str(tmp_path / "no.key")))
    )
    with pytest.raises(PgeConfigurationError) as raised:
        client.fetch(url=server.api_base + "Batch/Bulk/50098", access_token=ACCESS)
    assert raised.value.code == "missing_certificate"
    assert "does not exist" in str(raised.value)
    assert server.requests == []


def test_a_server_certificate_from_an_untrusted_ca_is_refused(  # type: ignore[no-untyped-def]
    mtls_server, mtls_config, tmp_path: Path
) -> None:
    import dataclasses

    server = mtls_server(_feed)
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    client = PgeClient(dataclasses.replace(mtls_config(server), ca_bundle=str(other_ca)))
    # Retried a bounded number of times (transient), never sent anything.
    with pytest.raises(PgeTransientError) as raised:
        client.fetch(url=server.api_base + "Batch/Bulk/50098", access_token=ACCESS)
    assert raised.value.code == "tls"
    assert "not trusted by the configured CA bundle" in str(raised.value)
    assert server.requests == []
