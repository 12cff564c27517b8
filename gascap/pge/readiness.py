"""What PG&E's registration asks a new third party to prove, run as one list of checks:
the client certificate's remaining days, client credentials on the registration *test* token
URL and on the real one, `ReadServiceStatus`, and the consent page URL.

Used by `python manage.py pge_check` before going live (README, "Going live with PG&E").
Three calls reach PG&E's API (two token grants, one status read); no customer token is used
and nothing is consented. The consent page is a browser page on another host
(sharemydata.pge.com), outside the API allow-list: it is probed with a plain GET that carries
no client certificate, no token and a throwaway `state` we never store, and redirects are not
followed (PG&E may answer 200 or send the browser to its login). Facts: docs/pge-protocol.md.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import requests

from gascap.pge.certificates import CertificateUnreadable, certificate_days_left
from gascap.pge.client import PgeClient
from gascap.pge.errors import PgeError
from gascap.pge.gate import BudgetExhausted
from gascap.pge.tokens import TokenResponse

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
_LOOPBACK_NAMES = {"localhost", "testserver"}


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # PASS, WARN or FAIL
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def certificate_check(*, path: str, now: datetime, warn_days: int) -> CheckResult:
    name = "client certificate"
    if not path:
        return CheckResult(name, FAIL, "GASCAP_PGE_CLIENT_CERT is not set")
    try:
        days = certificate_days_left(path, now=now)
    except CertificateUnreadable as exc:
        return CheckResult(name, FAIL, str(exc))
    if days < 0:
        return CheckResult(name, FAIL, f"expired {-days} day(s) ago: register a new one at PG&E")
    if days < warn_days:
        return CheckResult(name, WARN, f"expires in {days} day(s): register a new one at PG&E")
    return CheckResult(name, PASS, f"expires in {days} day(s)")


def _token_check(
    name: str, call: Callable[[], TokenResponse]
) -> tuple[CheckResult, TokenResponse | None]:
    try:
        token = call()
    except (PgeError, BudgetExhausted) as exc:  # messages never hold a token
        return CheckResult(name, FAIL, f"{type(exc).__name__}: {exc}"), None
    detail = f"client token granted (expires_in {token.expires_in}, scope {token.scope or '-'})"
    return CheckResult(name, PASS, detail), token


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def consent_url_problems(url: str, *, client_id: str, redirect_uri: str) -> list[str]:
    """Why the consent page URL would not work for a customer (empty: well-formed)."""
    problems: list[str] = []
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        problems.append("the consent page URL is not https with a host")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if not client_id or query.get("client_id", query.get("clientId")) != client_id:
        problems.append("client_id is missing")
    if query.get("response_type") != "code":
        problems.append("response_type is not code")
    redirect = urlsplit(query.get("redirect_uri", ""))
    if query.get("redirect_uri") != redirect_uri or not redirect.hostname:
        problems.append("redirect_uri is missing or not GASCAP_PGE_REDIRECT_URI")
    elif redirect.scheme != "https" and not _is_loopback(redirect.hostname):
        # OAuth 2.0 (RFC 6749 §3.1.2.1): the redirect endpoint must be TLS-protected.
        problems.append(f"redirect_uri {query['redirect_uri']} is not https")
    return problems


def consent_page_check(
    *, client: PgeClient, fetch: bool, session: requests.Session | None = None
) -> CheckResult:
    name = "consent page"
    config = client.config
    # A state that is never stored: the page can be shown, no consent can come back from it.
    url = client.authorize_url(state=secrets.token_urlsafe(16))
    problems = consent_url_problems(
        url, client_id=config.client_id, redirect_uri=config.redirect_uri
    )
    if problems:
        return CheckResult(name, FAIL, "; ".join(problems))
    if not fetch:
        return CheckResult(name, PASS, f"well-formed (not fetched): {config.authorize_url}")
    http = session or requests.Session()
    try:
        answer = http.get(
            url,
            allow_redirects=False,
            verify=config.ca_bundle or True,
            timeout=(config.connect_timeout, 30),
        )
    except requests.RequestException as exc:
        return CheckResult(name, FAIL, f"{config.authorize_url} unreachable: {type(exc).__name__}")
    finally:
        if session is None:
            http.close()
    if 200 <= answer.status_code < 300:
        return CheckResult(name, PASS, f"{config.authorize_url} answered {answer.status_code}")
    if 300 <= answer.status_code < 400:
        target = urlsplit(answer.headers.get("Location", "")).hostname or "?"
        return CheckResult(
            name, PASS, f"{config.authorize_url} answered {answer.status_code} to {target}"
        )
    return CheckResult(name, FAIL, f"{config.authorize_url} answered {answer.status_code}")


def registration_checks(
    *,
    client: PgeClient,
    now: datetime,
    warn_days: int = 30,
    fetch_consent_page: bool = True,
    session: requests.Session | None = None,
) -> list[CheckResult]:
    """Every check, in PG&E's order; each failure is reported, none stops the others."""
    config = client.config
    results = [certificate_check(path=config.client_cert, now=now, warn_days=warn_days)]
    test_url = config.test_token_url
    if test_url is None:
        results.append(
            CheckResult(
                "client credentials (test token URL)",
                FAIL,
                f"no PG&E test token path beside {config.token_url}",
            )
        )
    else:
        result, _ = _token_check(
            "client credentials (test token URL)",
            lambda: client.client_credentials(now=now, url=test_url),
        )
        results.append(result)
    result, token = _token_check(
        "client credentials (token URL)", lambda: client.client_credentials(now=now)
    )
    results.append(result)
    results.append(_service_status_check(client=client, token=token))
    results.append(consent_page_check(client=client, fetch=fetch_consent_page, session=session))
    return results


def _service_status_check(*, client: PgeClient, token: TokenResponse | None) -> CheckResult:
    name = "ReadServiceStatus"
    if token is None:
        return CheckResult(name, FAIL, "skipped: no client token")
    try:
        up = client.service_status(client_token=token.access_token)
    except (PgeError, BudgetExhausted) as exc:
        return CheckResult(name, FAIL, f"{type(exc).__name__}: {exc}")
    if not up:
        return CheckResult(name, FAIL, "currentStatus 0 (PG&E reports the service down)")
    return CheckResult(name, PASS, "currentStatus 1 (up)")
