"""Going live (gascap.pge side): PG&E's registration test token URL on the allow-list and
nothing else loosened, the environment switch, the client certificate's expiry and the
consent-URL checks that `pge_check` runs (docs/pge-protocol.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
import trustme

from gascap.pge import ClientCredentials
from gascap.pge.certificates import (
    CertificateUnreadable,
    certificate_days_left,
    certificate_not_after,
)
from gascap.pge.client import PgeClient
from gascap.pge.config import (
    PGE_PRODUCTION_TOKEN_URL,
    PgeConfig,
    config_from_environ,
    pge_endpoints,
    registration_test_token_url,
)
from gascap.pge.readiness import FAIL, PASS, WARN, certificate_check, consent_url_problems
from gascap.pge.urls import UrlPolicy
from tests.pge.conftest import API_BASE, CLIENT_ID, TOKEN_URL

# The seed's own client-credentials example (PG&E's 2015 guide).
PGE_TEST_TOKEN_URL = "https://api.pge.com/datacustodian/test/oauth/v2/token"
TEST_TOKEN = "https://api.pge.example/datacustodian/test/oauth/v2/token"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


# --- the test token URL ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token_url", "expected"),
    [
        (PGE_PRODUCTION_TOKEN_URL, PGE_TEST_TOKEN_URL),
        (
            "https://apiqa.pge.com/datacustodian/oauth/v2/token",
            "https://apiqa.pge.com/datacustodian/test/oauth/v2/token",
        ),
        (
            "https://localhost:8443/datacustodian/oauth/v2/token",
            "https://localhost:8443/datacustodian/test/oauth/v2/token",
        ),
        # Already the test URL, or another shape: nothing is derived.
        (PGE_TEST_TOKEN_URL, None),
        ("https://api.pge.com/oauth/token", None),
        ("https://api.pge.com/datacustodian/oauth/v2/token?x=1", None),
    ],
)
def test_the_test_token_url_sits_beside_the_token_url(token_url: str, expected: str | None) -> None:
    assert registration_test_token_url(token_url) == expected


POLICY = UrlPolicy(api_base=API_BASE, token_url=TOKEN_URL, test_token_url=TEST_TOKEN)


def test_the_test_token_url_is_allowed_exactly() -> None:
    assert POLICY.is_allowed(TEST_TOKEN)
    assert POLICY.is_allowed(TOKEN_URL)
    assert POLICY.is_allowed(API_BASE + "ReadServiceStatus")


@pytest.mark.parametrize(
    "url",
    [
        TEST_TOKEN + "/",
        TEST_TOKEN + "/x",
        TEST_TOKEN + "x",
        TEST_TOKEN + "#f",
        "https://api.pge.example/datacustodian/test/test/oauth/v2/token",
        "https://api.pge.example/datacustodian/Test/oauth/v2/token",
        "https://api.pge.example/datacustodian/test/oauth/v2/",
        "https://api.pge.example/datacustodian/test/",
        "https://api.pge.example/test/oauth/v2/token",
        "https://api.pge.example/datacustodian/test/../oauth/v2/token",
        "https://api.pge.example/datacustodian/test/./oauth/v2/token",
        "https://api.pge.example/datacustodian/test%2Foauth/v2/token",
        "https://api.pge.example/datacustodian/test/oauth/v2/%74oken",
        "https://api.pge.example/datacustodian//test/oauth/v2/token",
        "http://api.pge.example/datacustodian/test/oauth/v2/token",
        "https://api.pge.example:8443/datacustodian/test/oauth/v2/token",
        "https://evil.example/datacustodian/test/oauth/v2/token",
        "https://api.pge.example.evil.example/datacustodian/test/oauth/v2/token",
        "https://user@api.pge.example/datacustodian/test/oauth/v2/token",
        "https://apiqa.pge.example/datacustodian/test/oauth/v2/token",
    ],
)
def test_lookalikes_of_the_test_token_url_stay_refused(url: str) -> None:
    assert not POLICY.is_allowed(url), url


def test_without_it_the_policy_refuses_the_test_token_url() -> None:
    """Callers that do not pass it (the notification URL checks in ingest) are unchanged."""
    assert not UrlPolicy(api_base=API_BASE, token_url=TOKEN_URL).is_allowed(TEST_TOKEN)


def test_the_client_allows_the_test_token_url_of_its_configuration(pge: PgeClient) -> None:
    assert pge.config.test_token_url == TEST_TOKEN
    assert pge.is_allowed_url(TEST_TOKEN)
    assert not pge.is_allowed_url(PGE_TEST_TOKEN_URL)  # another host


@responses.activate
def test_the_seed_client_credentials_example_reaches_the_test_token_url(
    cert_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PG&E's guide example, with the production default configuration."""
    for name in ("ENVIRONMENT", "API_BASE", "TOKEN_URL", "AUTHORIZE_URL"):
        monkeypatch.delenv(f"GASCAP_PGE_{name}", raising=False)
    answer_json = {"client_access_token": "cat-test-1", "expires_in": 3600, "scope": "FB=35"}
    responses.post(PGE_TEST_TOKEN_URL, json=answer_json)
    creds = {"client_key": CLIENT_ID, "client_secret_key": "s"}
    certs = {"crt": cert_files[0], "key": cert_files[1]}
    answer = ClientCredentials(creds, certs).get_client_access_token(PGE_TEST_TOKEN_URL)
    assert answer["status"] == 200, answer
    assert answer["client_access_token"] == "cat-test-1"
    assert len(responses.calls) == 1


# --- the environment switch -----------------------------------------------------------------
def test_environments_set_the_three_urls() -> None:
    production, qa = pge_endpoints("production"), pge_endpoints("QA")
    assert production.api_base == "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"
    assert production.authorize_url == "https://sharemydata.pge.com/myAuthorization"
    assert qa.api_base == "https://apiqa.pge.com/GreenButtonConnect/espi/1_1/resource/"
    assert qa.token_url == "https://apiqa.pge.com/datacustodian/oauth/v2/token"
    assert qa.authorize_url == "https://sharemydataqa.pge.com/myAuthorization/"
    sandbox = pge_endpoints("sandbox", sandbox_url="https://localhost:9443")
    assert sandbox.token_url == "https://localhost:9443/datacustodian/oauth/v2/token"
    with pytest.raises(ValueError, match="production, qa, sandbox"):
        pge_endpoints("staging")


def test_the_sdk_config_follows_the_switch_and_explicit_urls_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("API_BASE", "TOKEN_URL", "AUTHORIZE_URL"):
        monkeypatch.delenv(f"GASCAP_PGE_{name}", raising=False)
    monkeypatch.setenv("GASCAP_PGE_ENVIRONMENT", "qa")
    config = config_from_environ()
    assert config.api_base.startswith("https://apiqa.pge.com/")
    assert config.test_token_url == "https://apiqa.pge.com/datacustodian/test/oauth/v2/token"
    monkeypatch.setenv("GASCAP_PGE_TOKEN_URL", "https://apiqa.pge.com/other/oauth/v2/token")
    assert config_from_environ().token_url == "https://apiqa.pge.com/other/oauth/v2/token"


# --- the client certificate -----------------------------------------------------------------
def client_cert(directory: Path, *, not_after: datetime) -> Path:
    """A CA-issued client certificate (with its chain, leaf first) expiring at `not_after`."""
    ca = trustme.CA()
    leaf = ca.issue_cert("gascap-client.example", not_after=not_after)
    path = directory / "client.pem"
    path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return path


def test_certificate_expiry_is_read_from_the_pem(tmp_path: Path) -> None:
    path = client_cert(tmp_path, not_after=NOW + timedelta(days=12, hours=5))
    assert certificate_not_after(path) == (NOW + timedelta(days=12, hours=5)).replace(microsecond=0)
    assert certificate_days_left(path, now=NOW) == 12
    assert certificate_days_left(path, now=NOW + timedelta(days=13)) == -1


def test_an_unreadable_certificate_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateUnreadable, match="cannot read"):
        certificate_not_after(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(CertificateUnreadable, match="no PEM certificate"):
        certificate_not_after(tmp_path / "junk.pem")


@pytest.mark.parametrize(
    ("days", "status"), [(400, PASS), (30, PASS), (29, WARN), (0, WARN), (-2, FAIL)]
)
def test_certificate_check_warns_within_30_days(tmp_path: Path, days: int, status: str) -> None:
    path = client_cert(tmp_path, not_after=NOW + timedelta(days=days, minutes=5))
    result = certificate_check(path=str(path), now=NOW, warn_days=30)
    assert result.status == status, result


def test_certificate_check_fails_without_a_certificate(tmp_path: Path) -> None:
    assert certificate_check(path="", now=NOW, warn_days=30).status == FAIL
    assert certificate_check(path=str(tmp_path / "x.pem"), now=NOW, warn_days=30).status == FAIL


# --- the consent page URL -------------------------------------------------------------------
def _consent(pge_config: PgeConfig, **changes: object) -> list[str]:
    from dataclasses import replace

    config = replace(pge_config, **changes)
    url = PgeClient(config).authorize_url(state="probe")
    return consent_url_problems(url, client_id=config.client_id, redirect_uri=config.redirect_uri)


def test_consent_url_checks(pge_config: PgeConfig) -> None:
    assert _consent(pge_config) == []
    assert _consent(pge_config, redirect_uri="http://localhost:8000/consent/callback/") == []
    assert _consent(pge_config, legacy_consent=True) == []
    assert any("not https" in p for p in _consent(pge_config, redirect_uri="http://x.example/cb"))
    assert any("redirect_uri" in p for p in _consent(pge_config, redirect_uri=""))
    assert any("client_id" in p for p in _consent(pge_config, client_id=""))
    assert any(
        "consent page" in p
        for p in _consent(pge_config, authorize_url="http://sharemydata.pge.example/x")
    )
