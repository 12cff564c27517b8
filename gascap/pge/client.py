"""`PgeClient`, the typed core every PG&E call goes through (the seed SDK in `sdk.py` is a thin
layer over it).

Endpoints (docs/pge-protocol.md): the consent redirect, the token endpoint (authorization code,
refresh, client credentials; HTTP Basic client authentication, form body), the Batch APIs
(Subscription sync/async, Bulk), GET of any resource URL a notification names, the
Authorization resource (GET/DELETE) and ReadServiceStatus. All network use goes through
`transport.Transport`: allow-list, mutual TLS, timeouts, no redirects, decoded-byte cap; and,
when the client has one, through its call gate (`gate.CallGate`: PG&E's shared pacing and
call budget, counted by kind), so no call to PG&E can bypass the budget.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import requests

from gascap.pge.answers import error_for_answer
from gascap.pge.authorization import ESPI, AuthorizationInfo, parse_authorizations
from gascap.pge.config import PgeConfig
from gascap.pge.errors import PgeError, PgePermanentError
from gascap.pge.gate import CallGate, CallKind, Priority, current_priority
from gascap.pge.safexml import parse_small_answer
from gascap.pge.tokens import TokenResponse, token_fields, token_response_build
from gascap.pge.transport import FetchedDocument, Transport
from gascap.pge.urls import published_params

__all__ = ["AsyncAnswer", "FetchedDocument", "PgeClient"]

# Token answers and single resources are small; a list of Authorizations grows with the
# number of customers (about 2 KB each).
TOKEN_BODY_BYTES = 1024 * 1024
AUTHORIZATION_BODY_BYTES = 64 * 1024 * 1024
_TOKEN_KINDS = {
    "authorization_code": CallKind.TOKEN_CODE,
    "refresh_token": CallKind.TOKEN_REFRESH,
    "client_credentials": CallKind.TOKEN_CLIENT,
}
_PATH_ID = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")


def _path_id(value: str | int, what: str) -> str:
    """An id placed in a URL path: plain characters only, so it cannot change the path."""
    text = str(value)
    if not _PATH_ID.match(text) or len(text) > 200:
        raise PgePermanentError(f"{what} is not a plain identifier", code="bad_id")
    return text


@dataclass
class AsyncAnswer:
    """PG&E's answer to an asynchronous Batch request (docs/pge-protocol.md, "Data APIs").

    Only 202 is an accepted request (the data follows by notification). A 200 that carries a
    body is the data itself: `document` holds it and the caller imports and closes it. Any
    other 2xx (a 200 without a body, 201, 204, ...) accepts nothing: no notification is
    promised, so the caller records it as unexpected. `url` is the request with its query.
    """

    status: int
    url: str
    document: FetchedDocument | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202


class PgeClient:
    """One configuration, one mutual-TLS session. Methods are keyword-only and raise the
    errors of `gascap.pge.errors`; none ever puts a token into a message or a repr."""

    def __init__(
        self,
        config: PgeConfig,
        session: requests.Session | None = None,
        *,
        gate: CallGate | None = None,
        priority: Priority | None = None,
    ) -> None:
        self.config = config
        self.transport = Transport(config, session=session)
        # Without a gate (the seed SDK) calls go out ungated; `priority` None = the work's own
        # (`gate.call_priority`).
        self.gate = gate
        self.priority = priority

    def _send(self, kind: CallKind, method: str, url: str, **kwargs: object) -> FetchedDocument:
        """`Transport.send` behind the gate: the budget is asked before any network use."""
        if self.gate is None:
            return self.transport.send(method, url, **kwargs)  # type: ignore[arg-type]
        self.transport.policy.check(url)  # a refused URL never spends the budget
        self.gate.before_call(
            kind, self.priority if self.priority is not None else current_priority()
        )
        status: int | None = None
        try:
            document = self.transport.send(method, url, **kwargs)  # type: ignore[arg-type]
            status = document.status
            return document
        except PgeError as exc:
            status = exc.status
            raise
        finally:
            self.gate.after_call(kind, status)

    def __repr__(self) -> str:
        return f"PgeClient(api_base={self.config.api_base!r})"

    # --- URLs --------------------------------------------------------------------------------
    def check_url(self, url: str) -> None:
        """Raise `PgeUrlRefused` unless `url` is on the configured API base or token URL."""
        self.transport.policy.check(url)

    def is_allowed_url(self, url: str) -> bool:
        return self.transport.policy.is_allowed(url)

    def authorize_url(
        self, *, state: str, login_guest: bool = False, redirect_uri: str | None = None
    ) -> str:
        """The consent page URL the customer's browser is sent to.

        Current flow: `client_id`, `redirect_uri`, `response_type=code`, `state`, optional
        `login=guest`. The 2015 SDK's `clientId` + `verified=true` flow, retired by PG&E in
        June 2018, is kept behind `legacy_consent`.
        """
        redirect = redirect_uri or self.config.redirect_uri
        if not state:
            raise ValueError("state is required (one-time, bound to the session)")
        if self.config.legacy_consent:
            params = {
                "clientId": self.config.client_id,
                "redirect_uri": redirect,
                "response_type": "code",
                "state": state,
                "verified": "true",
            }
        else:
            params = {
                "client_id": self.config.client_id,
                "redirect_uri": redirect,
                "response_type": "code",
                "state": state,
            }
            if login_guest:
                params["login"] = "guest"
        separator = "&" if "?" in self.config.authorize_url else "?"
        return f"{self.config.authorize_url}{separator}{urlencode(params)}"

    # --- tokens ------------------------------------------------------------------------------
    def token_request(
        self, *, form: Mapping[str, str], now: datetime, url: str | None = None
    ) -> TokenResponse:
        """POST the token endpoint (HTTP Basic client auth, form body) and parse the answer."""
        secrets = (self.config.client_secret, *form.values())
        document = self._send(
            _TOKEN_KINDS.get(form.get("grant_type", ""), CallKind.TOKEN_CLIENT),
            "POST",
            url or self.config.token_url,
            data=dict(form),
            auth=(self.config.client_id, self.config.client_secret),
            headers={"Accept": "application/json"},
            max_bytes=TOKEN_BODY_BYTES,
            secrets=secrets,
        )
        with document:
            if document.status != 200:
                raise error_for_answer(document, secrets=secrets)
            fields = token_fields(document.read(), document.content_type)
        if fields.get("error"):
            raise error_for_answer(_as_error(document, fields), secrets=secrets)
        return token_response_build(fields, now=now)

    def exchange_code(self, *, code: str, redirect_uri: str, now: datetime) -> TokenResponse:
        return self.token_request(
            form={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            now=now,
        )

    def refresh(self, *, refresh_token: str, now: datetime) -> TokenResponse:
        """A refreshed token; its `refresh_token` may be None (keep the old one then)."""
        return self.token_request(
            form={"grant_type": "refresh_token", "refresh_token": refresh_token}, now=now
        )

    def client_credentials(self, *, now: datetime, url: str | None = None) -> TokenResponse:
        """The client token (PG&E's `client_access_token`, normalised into `access_token`).
        `url`: another token URL on the allow-list, e.g. `config.test_token_url` (PG&E's
        registration connectivity test)."""
        return self.token_request(form={"grant_type": "client_credentials"}, now=now, url=url)

    # --- resources ---------------------------------------------------------------------------
    def get(
        self,
        *,
        url: str,
        token: str,
        params: Mapping[str, str] | None = None,
        method: str = "GET",
        max_bytes: int | None = None,
        kind: CallKind = CallKind.FETCH,
    ) -> FetchedDocument:
        """One bearer-token request to a URL on the API base; any 2xx is returned."""
        secrets = (token,)
        document = self._send(
            kind,
            method,
            url,
            headers={"Authorization": f"Bearer {token}"},
            params=params,
            max_bytes=max_bytes,
            secrets=secrets,
        )
        if not 200 <= document.status < 300:
            with document:
                raise error_for_answer(document, secrets=secrets)
        return document

    def subscription_url(
        self, *, subscription_id: str, usage_point_id: str | None = None, base: str | None = None
    ) -> str:
        """`{Batch base}Subscription/{SID}[/UsagePoint/{UPID}]` (ids checked as plain)."""
        url = (base or self.config.batch_base).rstrip("/")
        url += f"/Subscription/{_path_id(subscription_id, 'subscription id')}"
        if usage_point_id is not None:
            url += f"/UsagePoint/{_path_id(usage_point_id, 'usage point id')}"
        return url

    def request_subscription_async(
        self,
        *,
        subscription_id: str,
        published_min: int | str | datetime,
        published_max: int | str | datetime,
        access_token: str,
    ) -> AsyncAnswer:
        """Ask for a subscription's data; PG&E answers 202 and notifies when it is ready."""
        url = self.subscription_url(subscription_id=subscription_id)
        return self._async(url, access_token, published_params(published_min, published_max))

    def _async(self, url: str, token: str, params: Mapping[str, str]) -> AsyncAnswer:
        document = self.get(url=url, token=token, params=params, kind=CallKind.DATA_REQUEST)
        full_url = f"{url}?{urlencode(params)}" if params else url
        if document.status == 200 and document.size:
            return AsyncAnswer(status=200, url=full_url, document=document)
        document.close()
        return AsyncAnswer(status=document.status, url=full_url)

    def request_subscription_usage_point_sync(
        self,
        *,
        subscription_id: str,
        usage_point_id: str,
        published_min: int | str | datetime,
        published_max: int | str | datetime,
        access_token: str,
    ) -> FetchedDocument:
        """The usage point's feed, synchronously (200; 204 = no data in the range)."""
        url = self.subscription_url(subscription_id=subscription_id, usage_point_id=usage_point_id)
        return self.get(
            url=url, token=access_token, params=published_params(published_min, published_max)
        )

    def request_bulk(
        self,
        *,
        bulk_id: str | int,
        published_min: int | str | datetime | None = None,
        published_max: int | str | datetime | None = None,
        client_token: str,
    ) -> AsyncAnswer:
        """Ask for the Bulk batch (BulkID = the third-party id) with the client token; 202."""
        url = f"{self.config.batch_base}Bulk/{_path_id(bulk_id, 'bulk id')}"
        return self._async(url, client_token, published_params(published_min, published_max))

    def fetch(self, *, url: str, access_token: str) -> FetchedDocument:
        """GET a resource URL a notification named; refused before any network use unless it
        is on the configured API base. The caller closes the document."""
        return self.get(url=url, token=access_token)

    def authorization_get(self, *, subscription_id: str, client_token: str) -> AuthorizationInfo:
        url = f"{self.config.api_base}Authorization/{_path_id(subscription_id, 'subscription id')}"
        found = self._authorizations(url, client_token)
        if not found:
            raise PgePermanentError("Authorization answer holds no Authorization", code="malformed")
        return found[0]

    def authorizations_list(self, *, client_token: str) -> list[AuthorizationInfo]:
        return self._authorizations(f"{self.config.api_base}Authorization", client_token)

    def authorization_delete(self, *, subscription_id: str, client_token: str) -> None:
        """Revoke the customer's consent at PG&E."""
        url = f"{self.config.api_base}Authorization/{_path_id(subscription_id, 'subscription id')}"
        self.get(
            url=url,
            token=client_token,
            method="DELETE",
            max_bytes=TOKEN_BODY_BYTES,
            kind=CallKind.AUTHORIZATION_DELETE,
        ).close()

    def service_status(self, *, client_token: str) -> bool:
        """PG&E's `ReadServiceStatus`: True when `currentStatus` is 1 (up)."""
        url = f"{self.config.api_base}ReadServiceStatus"
        with self.get(
            url=url, token=client_token, max_bytes=TOKEN_BODY_BYTES, kind=CallKind.SERVICE_STATUS
        ) as document:
            body = document.read()
        root = parse_small_answer(body, what="ServiceStatus answer")
        status = next(root.iter(f"{{{ESPI}}}currentStatus"), None)
        current = (status.text or "").strip() if status is not None else ""
        if not current:
            raise PgePermanentError("ServiceStatus without currentStatus", code="malformed")
        return current == "1"

    def _authorizations(self, url: str, client_token: str) -> list[AuthorizationInfo]:
        max_bytes = min(self.config.max_body_bytes, AUTHORIZATION_BODY_BYTES)
        with self.get(
            url=url, token=client_token, max_bytes=max_bytes, kind=CallKind.AUTHORIZATION_GET
        ) as document:
            return parse_authorizations(document.read())


def _as_error(document: FetchedDocument, fields: Mapping[str, object]) -> FetchedDocument:
    """A 200 whose body is an OAuth error, presented as the 400 it stands for."""
    body = json.dumps(
        {k: str(v) for k, v in fields.items() if k in {"error", "error_description"}}
    ).encode()
    return FetchedDocument(
        status=400,
        content_type="application/json",
        url=document.url,
        headers=document.headers,
        body=io.BytesIO(body),
        size=len(body),
        elapsed=document.elapsed,
    )
