"""PG&E's 2015 SDK surface (`OAuth2`, `ClientCredentials`, `Api`): the dict contract."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from gascap.pge import Api, ClientCredentials, OAuth2
from gascap.pge.config import PgeConfig
from tests.pge.conftest import API_BASE, CLIENT_ID, CLIENT_SECRET, TOKEN_URL

BATCH = API_BASE + "Batch/"
ACCESS = "at-0c2b-seed-access"
REFRESH = "rt-e8f1-seed-refresh"
REFRESH_2 = "rt-77a0-seed-refresh-rotated"
SID = "90001"
UP = "70001"
FEED = "<feed xmlns='http://www.w3.org/2005/Atom'><id>seed</id></feed>"
CREDS = {"client_key": CLIENT_ID, "client_secret_key": CLIENT_SECRET}
TOKEN_ANSWER = {
    "access_token": ACCESS,
    "refresh_token": REFRESH,
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "FB=4_5_15;IntervalDuration=3600;",
    "resourceURI": f"{BATCH}Subscription/{SID}",
    "authorizationURI": f"{API_BASE}Authorization/{SID}",
}


@pytest.fixture
def certs(cert_files: tuple[str, str]) -> dict[str, str]:
    return {"crt": cert_files[0], "key": cert_files[1]}


@pytest.fixture
def config(pge_config: PgeConfig) -> PgeConfig:
    return pge_config


@responses.activate
def test_get_access_token_returns_pge_fields_and_status(certs, config) -> None:  # type: ignore[no-untyped-def]
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    oauth = OAuth2(CREDS, certs, config=config)
    answer = oauth.get_access_token(TOKEN_URL, "code-1", "https://gascap.example/cb/")
    assert answer == {"status": 200, **TOKEN_ANSWER}
    assert parse_qs(responses.calls[0].request.body)["grant_type"] == ["authorization_code"]
    assert CLIENT_SECRET not in repr(oauth) and ACCESS not in repr(oauth)


@responses.activate
def test_get_refresh_token_uses_the_last_refresh_token(certs, config) -> None:  # type: ignore[no-untyped-def]
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    responses.post(TOKEN_URL, json={**TOKEN_ANSWER, "refresh_token": REFRESH_2})
    responses.post(TOKEN_URL, json={k: v for k, v in TOKEN_ANSWER.items() if k != "refresh_token"})
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    oauth = OAuth2(CREDS, certs, config=config)
    oauth.get_access_token(TOKEN_URL, "code-1", "https://gascap.example/cb/")
    first = oauth.get_refresh_token(TOKEN_URL)
    second = oauth.get_refresh_token(TOKEN_URL)  # answer without refresh token: keep REFRESH_2
    third = oauth.get_refresh_token(TOKEN_URL)
    sent = [parse_qs(call.request.body).get("refresh_token") for call in responses.calls]
    assert sent == [None, [REFRESH], [REFRESH_2], [REFRESH_2]]
    assert first["status"] == 200 and first["refresh_token"] == REFRESH_2
    assert "refresh_token" not in second and second["access_token"] == ACCESS
    assert third["status"] == 200


@responses.activate
def test_get_refresh_token_with_an_explicit_token(certs, config) -> None:  # type: ignore[no-untyped-def]
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    answer = OAuth2(CREDS, certs, config=config).get_refresh_token(TOKEN_URL, refresh_token=REFRESH)
    assert parse_qs(responses.calls[0].request.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
    }
    assert answer["status"] == 200


def test_get_refresh_token_without_any_token_says_so(certs, config) -> None:  # type: ignore[no-untyped-def]
    answer = OAuth2(CREDS, certs, config=config).get_refresh_token(TOKEN_URL)
    assert answer["status"] == 0 and "no refresh token" in answer["error"]


@responses.activate
def test_client_access_token_keeps_pges_name(certs, config) -> None:  # type: ignore[no-untyped-def]
    body = {
        "client_access_token": ACCESS,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "FB=34",
    }
    responses.post(TOKEN_URL, json=body)
    answer = ClientCredentials(CREDS, certs, config=config).get_client_access_token(TOKEN_URL)
    assert answer == {"status": 200, **body}
    assert parse_qs(responses.calls[0].request.body) == {"grant_type": ["client_credentials"]}


@responses.activate
def test_sync_request_returns_the_feed(certs, config) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BATCH}Subscription/{SID}/UsagePoint/{UP}", body=FEED)
    answer = Api(certs, config=config).sync_request(
        BATCH, SID, UP, 1714521600, "1714608000", ACCESS
    )
    assert answer == {"status": 200, "data": FEED}
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert parse_qs(urlsplit(request.url).query) == {
        "published-min": ["1714521600"],
        "published-max": ["1714608000"],
    }


@responses.activate
def test_async_request_returns_202(certs, config) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BATCH}Subscription/{SID}", status=202, body="")
    answer = Api(certs, config=config).async_request(BATCH, SID, 1, 2, ACCESS)
    assert answer == {"status": 202, "data": ""}


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, "Invalid Certificate", "Invalid Certificate"),
        (
            400,
            '{"error":"invalid_request","error_description":"bad range"}',
            "invalid_request: bad range",
        ),
        (403, '{"error":"access_denied"}', "access_denied"),
        (404, "", "HTTP 404"),
        (429, "", "HTTP 429"),
        (500, "Internal Server Error", "Internal Server Error"),
    ],
)
@responses.activate
def test_http_failures_return_status_and_error(certs, config, status, body, error) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BATCH}Subscription/{SID}/UsagePoint/{UP}", status=status, body=body)
    answer = Api(certs, config=config).sync_request(BATCH, SID, UP, 1, 2, ACCESS)
    assert answer["status"] == status
    assert error in answer["error"]
    assert ACCESS not in answer["error"]


@responses.activate
def test_token_failures_return_status_and_pge_error(certs, config) -> None:  # type: ignore[no-untyped-def]
    responses.post(
        TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "expired"}
    )
    answer = OAuth2(CREDS, certs, config=config).get_refresh_token(TOKEN_URL, refresh_token=REFRESH)
    assert answer == {"status": 400, "error": "invalid_grant: expired"}


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (requests.exceptions.ConnectTimeout, "timeout"),
        (requests.exceptions.ReadTimeout, "timeout"),
        (requests.exceptions.ConnectionError, "connection"),
    ],
)
@responses.activate
def test_network_failures_return_status_zero(certs, config, exception, kind) -> None:  # type: ignore[no-untyped-def]
    responses.post(TOKEN_URL, body=exception("network down"))
    answer = ClientCredentials(CREDS, certs, config=config).get_client_access_token(TOKEN_URL)
    assert answer["status"] == 0
    assert answer["error"].startswith(f"{kind}: ")
    assert CLIENT_SECRET not in answer["error"]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/datacustodian/oauth/v2/token",
        "http://api.pge.example/datacustodian/oauth/v2/token",
        "https://api.pge.example/datacustodian/oauth/v2/token/../../x",
    ],
)
@responses.activate
def test_token_urls_off_the_allow_list_are_refused_without_a_request(certs, config, url) -> None:  # type: ignore[no-untyped-def]
    answer = OAuth2(CREDS, certs, config=config).get_access_token(url, "code-1", "https://x/")
    assert answer["status"] == 0 and answer["error"].startswith("refused: ")
    assert len(responses.calls) == 0


@responses.activate
def test_data_urls_off_the_allow_list_are_refused_without_a_request(certs, config) -> None:  # type: ignore[no-untyped-def]
    api = Api(certs, config=config)
    for base in ("https://evil.example/resource/Batch/", "https://user@api.pge.example/x/"):
        answer = api.sync_request(base, SID, UP, 1, 2, ACCESS)
        assert answer["status"] == 0 and answer["error"].startswith("refused: ")
    assert len(responses.calls) == 0


@responses.activate
def test_default_allow_list_comes_from_the_environment(
    certs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "GASCAP_PGE_API_BASE", "https://apiqa.pge.example/GreenButtonConnect/espi/1_1/resource/"
    )
    qa = "https://apiqa.pge.example/GreenButtonConnect/espi/1_1/resource/Batch/"
    responses.get(f"{qa}Subscription/{SID}", status=202)
    api = Api(certs)
    assert api.async_request(qa, SID, 1, 2, ACCESS)["status"] == 202
    # Production is not the configured base any more, so it is refused.
    prod = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/"
    assert api.async_request(prod, SID, 1, 2, ACCESS)["status"] == 0
    assert len(responses.calls) == 1


def test_missing_certificate_files_are_a_configuration_answer(config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    certs = {"crt": str(tmp_path / "none.crt"), "key": str(tmp_path / "none.key")}
    answer = Api(certs, config=config).async_request(BATCH, SID, 1, 2, ACCESS)
    assert answer["status"] == 0 and answer["error"].startswith("configuration: ")


def test_the_ca_key_sets_the_bundle(certs, config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "pge-ca.pem"
    bundle.write_text("dummy")
    api = Api({**certs, "ca": str(bundle)}, config=config)
    assert api._client.transport.session.verify == str(bundle)
    assert Api(certs, config=config)._client.transport.session.verify is True


def test_bad_published_bounds_are_an_answer_not_an_exception(certs, config) -> None:  # type: ignore[no-untyped-def]
    answer = Api(certs, config=config).async_request(BATCH, SID, "2024-01-01", 2, ACCESS)
    assert answer["status"] == 0 and answer["error"].startswith("invalid: ")


@responses.activate
@pytest.mark.parametrize("subscription_id", ["../Bulk/50098", "a/b", ""])
def test_bad_ids_are_an_answer_without_a_request(certs, config, subscription_id: str) -> None:  # type: ignore[no-untyped-def]
    api = Api(certs, config=config)
    for answer in (
        api.sync_request(BATCH, subscription_id, UP, 1, 2, ACCESS),
        api.async_request(BATCH, subscription_id, 1, 2, ACCESS),
    ):
        assert answer["status"] == 0 and answer["error"].startswith("invalid: "), answer
    assert len(responses.calls) == 0
