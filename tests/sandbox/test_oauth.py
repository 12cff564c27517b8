"""The consent page and the token endpoint, over real mutual TLS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.certs import CertPaths
from sandbox.server import SandboxServer
from sandbox.state import FakeClock

from .conftest import REDIRECT_URI, Pge, sid


def test_token_endpoint_refuses_a_request_without_client_certificate(
    sandbox: SandboxServer, certs: CertPaths
) -> None:
    no_cert = Pge(sandbox, certs, with_cert=False)
    answer = no_cert.token({"grant_type": "client_credentials"})
    assert answer.status_code == 400
    assert answer.text == "Invalid Certificate"


def test_a_certificate_from_another_ca_fails_the_handshake(
    sandbox: SandboxServer, certs: CertPaths, tmp_path
) -> None:
    import trustme

    other = trustme.CA().issue_cert("gascap-sandbox-client")
    other.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "other.pem"))
    session = requests.Session()
    session.trust_env = False
    try:
        answer = session.post(
            f"{sandbox.base_url}/datacustodian/oauth/v2/token",
            data={"grant_type": "client_credentials"},
            auth=("sandbox-client", "sandbox-secret"),
            cert=str(tmp_path / "other.pem"),
            verify=str(certs.ca),
            timeout=10,
        )
    except requests.exceptions.SSLError:
        return  # refused during the handshake (TLS 1.2)
    except requests.exceptions.ConnectionError:
        return  # refused right after it (TLS 1.3 alerts arrive late)
    raise AssertionError(f"unexpected answer {answer.status_code}")


def test_wrong_client_secret_is_invalid_client(pge: Pge) -> None:
    answer = pge.token({"grant_type": "client_credentials"}, auth=("sandbox-client", "nope"))
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert "nope" not in answer.text


def test_code_exchange_answers_pge_fields(pge: Pge, sandbox: SandboxServer) -> None:
    tokens = pge.connect("electric")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["resourceURI"] == f"{sandbox.api_base}Batch/Subscription/{sid('electric')}"
    assert tokens["authorizationURI"] == f"{sandbox.api_base}Authorization/{sid('electric')}"
    assert "FB=" in tokens["scope"]
    assert tokens["access_token"] != tokens["refresh_token"]


def test_code_is_single_use(pge: Pge) -> None:
    code = pge.code_for("gas")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    assert pge.token(form).status_code == 200
    again = pge.token(form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_expires_after_600_seconds(pge: Pge, clock: FakeClock) -> None:
    fresh, stale = pge.code_for("gas"), pge.code_for("gas")
    clock.advance(599)
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI}
    assert pge.token({**form, "code": fresh}).status_code == 200
    clock.advance(1)
    answer = pge.token({**form, "code": stale})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "authorization code expired",
    }


def test_redirect_uri_must_match(pge: Pge) -> None:
    code = pge.code_for("electric")
    answer = pge.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://localhost:8000/elsewhere/",
        }
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_the_old_token_stops_working(pge: Pge) -> None:
    first = pge.connect("solar")
    refreshed = pge.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    replay = pge.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The new access token works for the subscription's data.
    assert (
        pge.get(f"Subscription/{sid('solar')}/UsagePoint", body["access_token"]).status_code == 200
    )


def test_client_credentials_answer_client_access_token(pge: Pge) -> None:
    answer = pge.token({"grant_type": "client_credentials"})
    assert answer.status_code == 200
    body = answer.json()
    assert "access_token" not in body
    assert body["client_access_token"]
    assert body["expires_in"] == 3600
    assert pge.get("ReadServiceStatus", body["client_access_token"]).status_code == 200


def test_access_token_expires_after_an_hour(pge: Pge, clock: FakeClock) -> None:
    token = pge.connect("gas")["access_token"]
    path = f"Subscription/{sid('gas')}/UsagePoint"
    assert pge.get(path, token).status_code == 200
    clock.advance(3600)
    assert pge.get(path, token).status_code == 403


def test_unsupported_grant_is_an_rfc6749_error(pge: Pge) -> None:
    answer = pge.token({"grant_type": "password"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_reconsent_cancels_the_old_tokens(pge: Pge) -> None:
    old = pge.connect("electric")
    new = pge.connect("electric")
    path = f"Subscription/{sid('electric')}/UsagePoint"
    assert pge.get(path, old["access_token"]).status_code == 403
    assert pge.get(path, new["access_token"]).status_code == 200


# --- the consent page ------------------------------------------------------------------------


def test_consent_page_lists_demo_customers(pge: Pge, sandbox: SandboxServer) -> None:
    page = pge.session.get(
        f"{sandbox.base_url}/myAuthorization", params=pge.consent_params(login="guest"), timeout=10
    )
    assert page.status_code == 200
    for name in ("Demo Electric Home", "Demo Solar Home", "Demo Gas Home"):
        assert name in page.text
    assert "Approve" in page.text and "Deny" in page.text
    assert "http" not in page.text.split("<body>")[0]  # no third-party assets in the head


def test_consent_page_does_not_need_a_client_certificate(
    sandbox: SandboxServer, certs: CertPaths
) -> None:
    browser = Pge(sandbox, certs, with_cert=False)
    answer = browser.approve("gas")
    assert answer.status_code == 302


def test_approve_redirects_with_code_and_state(pge: Pge) -> None:
    answer = pge.approve("electric")
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["state-123"]
    assert query["code"][0]


def test_deny_redirects_with_access_denied(pge: Pge, sandbox: SandboxServer) -> None:
    answer = pge.session.post(
        f"{sandbox.base_url}/myAuthorization",
        data={**pge.consent_params(), "decision": "deny"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query == {"error": ["access_denied"], "state": ["state-123"]}


def test_wrong_client_id_or_unregistered_redirect_gives_an_error_page(
    pge: Pge, sandbox: SandboxServer
) -> None:
    for bad in ({"client_id": "someone-else"}, {"redirect_uri": "https://evil.example/cb"}):
        page = pge.session.get(
            f"{sandbox.base_url}/myAuthorization", params=pge.consent_params(**bad), timeout=10
        )
        assert page.status_code == 400
        assert "Location" not in page.headers
        posted = pge.approve("electric", **bad)
        assert posted.status_code == 400
        assert "Location" not in posted.headers
