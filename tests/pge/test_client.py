"""The typed PG&E client over `responses`: request shapes, every documented answer, the
allow-list, redirects, the size cap and secret hygiene."""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig
from gascap.pge.errors import (
    PgeAuthError,
    PgeConfigurationError,
    PgePermanentError,
    PgeTransientError,
    PgeUrlRefused,
)
from tests.pge.conftest import API_BASE, CLIENT_ID, CLIENT_SECRET, TOKEN_URL

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACCESS = "at-7f3e-fixture-access"
REFRESH = "rt-91aa-fixture-refresh"
CODE = "code-55d0-fixture"
SCOPE = (
    "FB=1_3_4_5_8_13_14_15_18_19_31_32_35_37_38_39_40;IntervalDuration=900_3600;"
    "BlockDuration=Daily;HistoryLength=63072000;SubscriptionFrequency=Daily;AccountCollection=1;"
)
SID = "90001"
TOKEN_ANSWER = {
    "access_token": ACCESS,
    "refresh_token": REFRESH,
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": SCOPE,
    "resourceURI": f"{API_BASE}Batch/Subscription/{SID}",
    "authorizationURI": f"{API_BASE}Authorization/{SID}",
}
BULK_URL = f"{API_BASE}Batch/Bulk/50098?correlationID=4f1d0000-aaaa-bbbb-cccc-000000000001"
FEED = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>x</id></feed>'
SECRETS = (ACCESS, REFRESH, CODE, CLIENT_SECRET)


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# --- tokens ----------------------------------------------------------------------------------
@responses.activate
def test_code_exchange_sends_basic_auth_and_a_form_body(pge: PgeClient) -> None:
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    token = pge.exchange_code(code=CODE, redirect_uri="https://gascap.example/cb/", now=NOW)

    request = responses.calls[0].request
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body) == {
        "grant_type": ["authorization_code"],
        "code": [CODE],
        "redirect_uri": ["https://gascap.example/cb/"],
    }
    assert request.headers["User-Agent"] == "gascap/0.1"
    assert token.access_token == ACCESS
    assert token.refresh_token == REFRESH
    assert token.expires_at == NOW + timedelta(seconds=3600)
    assert token.subscription_id == SID
    assert token.scope_params["FB"][:3] == ["1", "3", "4"]
    assert token.scope_params["IntervalDuration"] == ["900", "3600"]
    assert token.resource_uri == TOKEN_ANSWER["resourceURI"]
    _assert_no_secret(repr(token) + str(token))


@responses.activate
def test_refresh_without_a_new_refresh_token_says_so(pge: PgeClient) -> None:
    answer = {k: v for k, v in TOKEN_ANSWER.items() if k != "refresh_token"}
    responses.post(TOKEN_URL, json=answer)
    token = pge.refresh(refresh_token=REFRESH, now=NOW)
    assert parse_qs(responses.calls[0].request.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
    }
    assert token.refresh_token is None
    assert token.access_token == ACCESS


@responses.activate
def test_client_credentials_token_is_normalised(pge: PgeClient) -> None:
    responses.post(
        TOKEN_URL,
        json={
            "client_access_token": ACCESS,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "FB=34_35",
        },
    )
    token = pge.client_credentials(now=NOW)
    assert parse_qs(responses.calls[0].request.body) == {"grant_type": ["client_credentials"]}
    assert token.access_token == ACCESS
    assert token.refresh_token is None
    assert token.scope_params == {"FB": ["34", "35"]}


@responses.activate
def test_an_xml_token_answer_is_parsed_by_content_type(pge: PgeClient) -> None:
    body = (
        "<?xml version='1.0'?><OAuthToken xmlns='urn:example'>"
        f"<access_token>{ACCESS}</access_token><token_type>Bearer</token_type>"
        "<expires_in>1800</expires_in><scope>FB=4</scope></OAuthToken>"
    )
    responses.post(TOKEN_URL, body=body, content_type="application/xml")
    token = pge.client_credentials(now=NOW)
    assert token.access_token == ACCESS
    assert token.expires_at == NOW + timedelta(seconds=1800)


@responses.activate
def test_invalid_grant_means_the_consent_is_gone(pge: PgeClient) -> None:
    responses.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": f"Invalid refresh token {REFRESH}"},
    )
    with pytest.raises(PgeAuthError) as raised:
        pge.refresh(refresh_token=REFRESH, now=NOW)
    assert raised.value.invalid_grant is True
    assert raised.value.status == 400
    _assert_no_secret(str(raised.value) + repr(raised.value) + raised.value.pge_description)


@responses.activate
def test_invalid_request_is_permanent(pge: PgeClient) -> None:
    responses.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_request", "error_description": "Missing grant_type"},
    )
    with pytest.raises(PgePermanentError) as raised:
        pge.client_credentials(now=NOW)
    assert raised.value.code == "invalid_request"
    assert "Missing grant_type" in str(raised.value)


@responses.activate
def test_an_xml_error_answer_is_understood(pge: PgeClient) -> None:
    responses.post(
        TOKEN_URL,
        status=400,
        body="<OAuth2Error><error>invalid_grant</error></OAuth2Error>",
        content_type="text/xml",
    )
    with pytest.raises(PgeAuthError) as raised:
        pge.exchange_code(code=CODE, redirect_uri="https://gascap.example/cb/", now=NOW)
    assert raised.value.invalid_grant


@responses.activate
def test_a_token_answer_without_a_token_is_malformed(pge: PgeClient) -> None:
    responses.post(TOKEN_URL, json={"token_type": "Bearer"})
    with pytest.raises(PgePermanentError) as raised:
        pge.client_credentials(now=NOW)
    assert raised.value.code == "malformed"


# --- Batch requests ----------------------------------------------------------------------------
@responses.activate
def test_sync_request_shape_and_feed(pge: PgeClient) -> None:
    url = f"{API_BASE}Batch/Subscription/{SID}/UsagePoint/70001"
    responses.get(url, body=FEED, content_type="application/atom+xml")
    with pge.request_subscription_usage_point_sync(
        subscription_id=SID,
        usage_point_id="70001",
        published_min=1714521600,
        published_max=datetime(2024, 5, 2, tzinfo=UTC),
        access_token=ACCESS,
    ) as document:
        assert document.status == 200
        assert document.read() == FEED
        assert document.size == len(FEED)
        assert document.open().read(6) == b"<?xml "
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert parse_qs(urlsplit(request.url).query) == {
        "published-min": ["1714521600"],
        "published-max": ["1714608000"],
    }


@responses.activate
def test_204_gives_an_empty_document(pge: PgeClient) -> None:
    responses.get(f"{API_BASE}Batch/Subscription/{SID}/UsagePoint/70001", status=204)
    document = pge.request_subscription_usage_point_sync(
        subscription_id=SID,
        usage_point_id="70001",
        published_min=1,
        published_max=2,
        access_token=ACCESS,
    )
    assert (document.status, document.size, document.read()) == (204, 0, b"")


@responses.activate
def test_async_and_bulk_requests_answer_202(pge: PgeClient) -> None:
    responses.get(f"{API_BASE}Batch/Subscription/{SID}", status=202)
    responses.get(f"{API_BASE}Batch/Bulk/50098", status=202)
    answer = pge.request_subscription_async(
        subscription_id=SID, published_min="1", published_max="2", access_token=ACCESS
    )
    assert (answer.status, answer.accepted, answer.document) == (202, True, None)
    assert answer.url == f"{API_BASE}Batch/Subscription/{SID}?published-min=1&published-max=2"
    bulk = pge.request_bulk(bulk_id=50098, client_token=ACCESS)
    assert (bulk.status, bulk.accepted, bulk.url) == (202, True, f"{API_BASE}Batch/Bulk/50098")
    assert urlsplit(responses.calls[1].request.url).query == ""


@responses.activate
def test_an_async_request_answered_200_with_a_feed_hands_the_document_over(
    pge: PgeClient,
) -> None:
    """Async requests succeed on exactly 202 (docs/pge-protocol.md); a 200 that carries the data
    is the data: the caller imports it rather than wait for a notification."""
    responses.get(f"{API_BASE}Batch/Subscription/{SID}", body=FEED, content_type="text/xml")
    answer = pge.request_subscription_async(
        subscription_id=SID, published_min=1, published_max=2, access_token=ACCESS
    )
    assert (answer.status, answer.accepted) == (200, False)
    assert answer.document is not None
    with answer.document as document:
        assert document.read() == FEED


@pytest.mark.parametrize("status", [200, 201, 203, 204, 206])
@responses.activate
def test_other_2xx_to_an_async_request_are_not_accepted(pge: PgeClient, status: int) -> None:
    responses.get(f"{API_BASE}Batch/Bulk/50098", status=status, body=b"")
    answer = pge.request_bulk(bulk_id="50098", client_token=ACCESS)
    assert (answer.status, answer.accepted, answer.document) == (status, False, None)


def test_ids_cannot_change_the_path(pge: PgeClient) -> None:
    with pytest.raises(PgePermanentError):
        pge.request_subscription_async(
            subscription_id="../Authorization",
            published_min=1,
            published_max=2,
            access_token=ACCESS,
        )


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "code"),
    [
        (400, "Invalid Certificate", {}, PgeConfigurationError, "invalid_certificate"),
        (
            400,
            '{"error":"invalid_request","error_description":"bad range"}',
            {},
            PgePermanentError,
            "invalid_request",
        ),
        (401, "", {}, PgeAuthError, "http_401"),
        (403, "Forbidden", {}, PgeAuthError, "http_403"),
        (404, "Not Found", {}, PgePermanentError, "http_404"),
        (429, "slow down", {"Retry-After": "5"}, PgeTransientError, "rate_limited"),
        (500, "oops", {}, PgeTransientError, "http_500"),
        (503, "", {}, PgeTransientError, "http_503"),
    ],
)
@responses.activate
def test_documented_answers_become_sorted_errors(
    pge: PgeClient, status: int, body: str, headers: dict[str, str], error: type, code: str
) -> None:
    responses.get(BULK_URL, status=status, body=body, headers=headers)
    with pytest.raises(error) as raised:
        pge.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.status == status
    assert raised.value.code == code
    if status == 429:
        assert raised.value.retry_after == 5.0
    _assert_no_secret(str(raised.value))


@responses.activate
def test_retry_after_as_an_http_date(pge: PgeClient) -> None:
    responses.get(BULK_URL, status=429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    with pytest.raises(PgeTransientError) as raised:
        pge.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.retry_after is not None and raised.value.retry_after > 10**8


@pytest.mark.parametrize(
    "exception", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout]
)
@responses.activate
def test_timeouts_are_transient(pge: PgeClient, exception: type[Exception]) -> None:
    responses.get(BULK_URL, body=exception("timed out"))
    with pytest.raises(PgeTransientError) as raised:
        pge.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.code == "timeout"
    assert raised.value.status is None


@responses.activate
def test_connection_errors_are_transient(pge: PgeClient) -> None:
    responses.get(BULK_URL, body=requests.exceptions.ConnectionError("connection refused"))
    with pytest.raises(PgeTransientError) as raised:
        pge.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.code == "connection"


@responses.activate
def test_every_call_has_timeouts_and_never_follows_redirects(pge: PgeClient) -> None:
    seen: list[dict[str, object]] = []
    original = pge.transport.session.request

    def spy(*args: object, **kwargs: object) -> requests.Response:
        seen.append(kwargs)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    pge.transport.session.request = spy  # type: ignore[method-assign]
    responses.get(BULK_URL, body=FEED)
    responses.post(TOKEN_URL, json=TOKEN_ANSWER)
    pge.fetch(url=BULK_URL, access_token=ACCESS).close()
    pge.refresh(refresh_token=REFRESH, now=NOW)
    assert [kw["timeout"] for kw in seen] == [(10.0, 60.0)] * 2
    assert all(kw["allow_redirects"] is False for kw in seen)


# --- allow-list, redirects, size cap -----------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        "https://api.pge.example@evil.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        "https://evil.example@api.pge.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        "http://api.pge.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        "https://api.pge.example:8443/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/1",
        "https://api.pge.example/GreenButtonConnect/espi/1_1/other/Bulk/1",
        "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/../../x",
    ],
)
@responses.activate
def test_urls_outside_the_allow_list_are_refused_before_any_request(
    pge: PgeClient, url: str
) -> None:
    with pytest.raises(PgeUrlRefused):
        pge.fetch(url=url, access_token=ACCESS)
    assert len(responses.calls) == 0
    assert not pge.is_allowed_url(url)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@responses.activate
def test_redirects_are_not_followed(pge: PgeClient, status: int) -> None:
    responses.get(BULK_URL, status=status, headers={"Location": "https://evil.example/steal"})
    responses.get("https://evil.example/steal", body="stolen")
    with pytest.raises(PgePermanentError) as raised:
        pge.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.code == "unexpected_redirect"
    assert [call.request.url for call in responses.calls] == [BULK_URL]


@responses.activate
def test_a_body_over_the_cap_stops_the_download(pge: PgeClient) -> None:
    responses.get(BULK_URL, body=b"<x>" + b"a" * (2 * 1024 * 1024))
    with pytest.raises(PgePermanentError) as raised:
        pge.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.code == "too_large"


@responses.activate
def test_a_gzip_bomb_stops_at_the_decoded_cap_with_flat_memory(pge: PgeClient) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100 * 1024  # small on the wire, far over the 1 MiB cap decoded
    responses.get(BULK_URL, body=bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(PgePermanentError) as raised:
            pge.fetch(url=BULK_URL, access_token=ACCESS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.code == "too_large"
    assert peak < 8 * 1024 * 1024


@responses.activate
def test_gzip_under_the_cap_is_decoded(pge: PgeClient) -> None:
    responses.get(BULK_URL, body=gzip.compress(FEED), headers={"Content-Encoding": "gzip"})
    with pge.fetch(url=BULK_URL, access_token=ACCESS) as document:
        assert document.read() == FEED
        assert document.size == len(FEED)


@responses.activate
def test_missing_certificate_files_fail_before_any_request(
    pge_config: PgeConfig, tmp_path: Path
) -> None:
    import dataclasses

    client = PgeClient(dataclasses.replace(pge_config, client_cert=str(tmp_path / "nope.pem")))
    with pytest.raises(PgeConfigurationError) as raised:
        client.fetch(url=BULK_URL, access_token=ACCESS)
    assert raised.value.code == "missing_certificate"
    assert len(responses.calls) == 0


# --- Authorization, ServiceStatus, consent URL ------------------------------------------------
@responses.activate
def test_authorization_get_parses_the_entry(pge: PgeClient, fixture_path) -> None:  # type: ignore[no-untyped-def]
    body = Path(fixture_path("pge_cmd_2015_authorization_entry.xml")).read_bytes()
    responses.get(f"{API_BASE}Authorization/0", body=body, content_type="application/atom+xml")
    info = pge.authorization_get(subscription_id="0", client_token=ACCESS)
    assert info.status == 1 and info.is_active
    assert info.subscription_id == "0"
    # The sample's periods are in milliseconds: 1440585200000 ms is 2015-08-26.
    assert info.authorized_start == datetime(2015, 8, 26, 10, 33, 20, tzinfo=UTC)
    assert info.published_start == datetime.fromtimestamp(1395513200, tz=UTC)
    assert info.expires_at == datetime.fromtimestamp(1440670029, tz=UTC)
    assert info.scope_params["BlockDuration"] == ["Daily"]
    assert info.url == "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Authorization/0"


@responses.activate
def test_authorizations_list_reads_a_feed(pge: PgeClient) -> None:
    def entry(sid: str, status: int) -> str:
        return (
            "<entry><content><e:Authorization xmlns:e='http://naesb.org/espi'>"
            f"<e:status>{status}</e:status>"
            "<e:authorizedPeriod><e:duration>31536000</e:duration><e:start>1700000000</e:start></e:authorizedPeriod>"
            f"<e:resourceURI>{API_BASE}Batch/Subscription/{sid}</e:resourceURI>"
            "</e:Authorization></content></entry>"
        )

    feed = (
        f"<feed xmlns='http://www.w3.org/2005/Atom'>{entry('90001', 1)}{entry('90002', 0)}</feed>"
    )
    responses.get(f"{API_BASE}Authorization", body=feed)
    infos = pge.authorizations_list(client_token=ACCESS)
    assert [(i.subscription_id, i.status) for i in infos] == [("90001", 1), ("90002", 0)]
    assert infos[0].authorized_end == datetime.fromtimestamp(1700000000 + 31536000, tz=UTC)


@responses.activate
def test_authorization_delete_and_service_status(pge: PgeClient) -> None:
    responses.delete(f"{API_BASE}Authorization/{SID}", status=200)
    responses.get(
        f"{API_BASE}ReadServiceStatus",
        body="<ServiceStatus xmlns='http://naesb.org/espi'><currentStatus>1</currentStatus></ServiceStatus>",
    )
    pge.authorization_delete(subscription_id=SID, client_token=ACCESS)
    assert responses.calls[0].request.method == "DELETE"
    assert pge.service_status(client_token=ACCESS) is True


@responses.activate
def test_service_status_down(pge: PgeClient) -> None:
    responses.get(
        f"{API_BASE}ReadServiceStatus",
        body="<ns:ServiceStatus xmlns:ns='http://naesb.org/espi'><ns:currentStatus>0</ns:currentStatus></ns:ServiceStatus>",
    )
    assert pge.service_status(client_token=ACCESS) is False


def test_consent_url_current_and_legacy(pge_config: PgeConfig) -> None:
    import dataclasses

    url = PgeClient(pge_config).authorize_url(state="st-1", login_guest=True)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == pge_config.authorize_url
    assert parse_qs(parts.query) == {
        "client_id": [CLIENT_ID],
        "redirect_uri": ["https://gascap.example/consent/callback/"],
        "response_type": ["code"],
        "state": ["st-1"],
        "login": ["guest"],
    }
    legacy = PgeClient(dataclasses.replace(pge_config, legacy_consent=True))
    query = parse_qs(urlsplit(legacy.authorize_url(state="st-2")).query)
    assert query["clientId"] == [CLIENT_ID] and query["verified"] == ["true"]
    assert "client_id" not in query


def test_reprs_never_show_secrets(pge: PgeClient, pge_config: PgeConfig) -> None:
    text = repr(pge) + repr(pge_config) + str(pge_config)
    assert CLIENT_SECRET not in text


def test_token_json_roundtrip_is_not_a_secret_leak() -> None:
    # A guard for this module's own fixtures: the secrets searched for are distinct strings.
    assert len(set(SECRETS)) == len(SECRETS)
    assert json.dumps(TOKEN_ANSWER).count(ACCESS) == 1
