"""`manage.py pge_check` against the sandbox over real mutual TLS: what PG&E's registration
asks (client credentials on the test and the real token URL, ReadServiceStatus, the consent
page, the certificate's days left), a pass/fail table and a non-zero exit on a failure."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.certs import CertPaths
from sandbox.server import SandboxServer

from .conftest import REDIRECT_URI, Pge


@pytest.fixture
def pge_settings(settings, sandbox: SandboxServer, certs: CertPaths):
    settings.GASCAP_PGE_ENVIRONMENT = "sandbox"
    settings.GASCAP_PGE_API_BASE = sandbox.api_base
    settings.GASCAP_PGE_TOKEN_URL = f"{sandbox.base_url}/datacustodian/oauth/v2/token"
    settings.GASCAP_PGE_AUTHORIZE_URL = f"{sandbox.base_url}/myAuthorization"
    settings.GASCAP_PGE_CA_BUNDLE = str(certs.ca)
    settings.GASCAP_PGE_CLIENT_CERT = str(certs.client_cert)
    settings.GASCAP_PGE_CLIENT_KEY = str(certs.client_key)
    settings.GASCAP_PGE_CLIENT_ID = "sandbox-client"
    settings.GASCAP_PGE_CLIENT_SECRET = "sandbox-secret"
    settings.GASCAP_PGE_REDIRECT_URI = REDIRECT_URI
    return settings


def run_check(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("pge_check", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def rows(output: str) -> dict[str, str]:
    """check name → status, from the table."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition("  ")
        if status.strip() in {"PASS", "WARN", "FAIL"}:
            found[rest.strip().split("  ")[0]] = status.strip()
    return found


def test_pge_check_passes_against_the_sandbox(pge_settings, pge: Pge) -> None:
    output, error = run_check()
    assert error is None, output
    assert rows(output) == {
        "client certificate": "PASS",
        "client credentials (test token URL)": "PASS",
        "client credentials (token URL)": "PASS",
        "ReadServiceStatus": "PASS",
        "consent page": "PASS",
    }
    assert "sandbox-secret" not in output
    # Every step really reached the sandbox over mTLS, the test token path included.
    recorded = pge.control("GET", "requests").json()
    reached = [(r["method"], r["path"], r["status"]) for r in recorded]
    assert ("POST", "/datacustodian/test/oauth/v2/token", 200) in reached
    assert ("POST", "/datacustodian/oauth/v2/token", 200) in reached
    assert ("GET", "/myAuthorization", 200) in reached
    status_reads = [r for r in recorded if r["path"].endswith("/ReadServiceStatus")]
    assert [(r["token_class"], r["status"]) for r in status_reads] == [("client", 200)]
    assert all(r["client_cert_subject"] for r in recorded if r["path"] != "/myAuthorization")
    # Nothing was consented: the consent page was only shown.
    assert not any(r["method"] == "POST" and r["path"] == "/myAuthorization" for r in recorded)
    customers = pge.control("GET", "customers").json()
    assert [c["authorization_status"] for c in customers] == [None] * len(customers)


def test_pge_check_fails_when_pge_reports_the_service_down(pge_settings, pge: Pge) -> None:
    pge.control("POST", "service", {"up": False})
    output, error = run_check()
    assert error is not None and "ReadServiceStatus" in str(error)
    assert rows(output)["ReadServiceStatus"] == "FAIL"
    assert rows(output)["client credentials (token URL)"] == "PASS"


def test_pge_check_fails_with_a_wrong_client_secret(pge_settings) -> None:
    pge_settings.GASCAP_PGE_CLIENT_SECRET = "not-the-secret-7d1"
    output, error = run_check()
    assert error is not None
    table = rows(output)
    assert table["client credentials (test token URL)"] == "FAIL"
    assert table["client credentials (token URL)"] == "FAIL"
    assert table["ReadServiceStatus"] == "FAIL"
    assert "not-the-secret-7d1" not in output + str(error)


def test_pge_check_fails_when_the_redirect_uri_is_not_registered(pge_settings) -> None:
    pge_settings.GASCAP_PGE_REDIRECT_URI = "http://localhost:8000/not/registered/"
    output, error = run_check()
    assert error is not None
    assert rows(output)["consent page"] == "FAIL"
    assert "answered 400" in output
    # Without the fetch only the URL's form is checked.
    output, error = run_check("--no-consent-fetch")
    assert error is None and rows(output)["consent page"] == "PASS"


def test_pge_check_fails_without_the_client_certificate(pge_settings, tmp_path) -> None:
    pge_settings.GASCAP_PGE_CLIENT_CERT = str(tmp_path / "missing.pem")
    output, error = run_check()
    assert error is not None
    table = rows(output)
    assert table["client certificate"] == "FAIL"
    assert table["client credentials (token URL)"] == "FAIL"
