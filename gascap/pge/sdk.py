"""PG&E's 2015 Python SDK surface (`OAuth2`, `ClientCredentials`, `Api`), kept name for name
as a thin layer over `PgeClient`: one implementation, dict answers.

```python
from gascap.pge import OAuth2, ClientCredentials, Api

creds = {"client_key": "...", "client_secret_key": "..."}
certs = {"crt": "client.crt.pem", "key": "client.key.pem"}   # optional "ca": PG&E's CA bundle
oauth = OAuth2(creds, certs)
oauth.get_access_token(token_url, code, redirect_uri)
oauth.get_refresh_token(token_url)
ClientCredentials(creds, certs).get_client_access_token(token_url)
api = Api(certs)
api.sync_request(batch_url, subscription_id, usage_point, published_min, published_max, token)
api.async_request(batch_url, subscription_id, published_min, published_max, token)
```

Answers:
- success: `{"status": <HTTP status>, ...PG&E's fields}`; tokens keep PG&E's names
  (`access_token`, `refresh_token`, `expires_in`, `scope`, `resourceURI`, `authorizationURI`;
  `client_access_token` for client credentials); data calls give `{"status": 200, "data":
  "<xml…>"}` (sync; `""` with 204) and `{"status": 202, "data": ...}` (async).
- failure with an HTTP answer: `{"status": <HTTP status>, "error": <PG&E's error /
  error_description, or a clear description>}`.
- failure **without** an HTTP answer: `{"status": 0, "error": "<kind>: <description>"}` where
  kind is `timeout`, `connection` (network failure), `tls` (handshake refused),
  `configuration` (missing certificate files), `refused` (URL outside the allow-list, nothing
  sent) or `invalid` (an argument that cannot be sent). Status 0 is never an HTTP status.
No method raises for these failures, and no answer or repr ever contains a token or secret.

The allow-list is the configured API base plus the token URL (`GASCAP_PGE_API_BASE`,
`GASCAP_PGE_TOKEN_URL`, production by default), or those of the `config=` keyword.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig, config_from_environ
from gascap.pge.errors import PgeError, PgeUrlRefused
from gascap.pge.tokens import TokenResponse
from gascap.pge.urls import published_params

NO_HTTP_STATUS = 0


def _client(
    creds: Mapping[str, str] | None, certs: Mapping[str, str], config: PgeConfig | None
) -> PgeClient:
    client_id = (creds or {}).get("client_key", "")
    client_secret = (creds or {}).get("client_secret_key", "")
    client_cert, client_key = certs.get("crt", ""), certs.get("key", "")
    if config is None:
        config = config_from_environ(
            client_id=client_id,
            client_secret=client_secret,
            client_cert=client_cert,
            client_key=client_key,
            ca_bundle=certs.get("ca"),
        )
    else:
        config = dataclasses.replace(
            config,
            client_id=client_id,
            client_secret=client_secret,
            client_cert=client_cert,
            client_key=client_key,
            ca_bundle=certs.get("ca", config.ca_bundle),
        )
    return PgeClient(config)


def _failure(exc: PgeError) -> dict[str, Any]:
    if exc.status is not None:
        if exc.pge_error and exc.pge_description:
            error = f"{exc.pge_error}: {exc.pge_description}"
        else:
            error = exc.pge_description or exc.pge_error or exc.message
        if exc.code == "invalid_certificate":
            error = f"Invalid Certificate: {exc.message}"
        return {"status": exc.status, "error": error}
    if isinstance(exc, PgeUrlRefused):
        kind = "refused"
    elif exc.code in {"timeout", "connection", "tls"}:
        kind = exc.code
    elif exc.code == "bad_id":
        kind = "invalid"
    else:
        kind = "configuration" if "configuration" in type(exc).__name__.lower() else exc.code
    return {"status": NO_HTTP_STATUS, "error": f"{kind}: {exc.message}"}


def _answer(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return call()
    except PgeError as exc:
        return _failure(exc)
    except (TypeError, ValueError) as exc:
        return {"status": NO_HTTP_STATUS, "error": f"invalid: {exc}"}


def _token_dict(token: TokenResponse, *, client: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": 200, **token.raw, "expires_in": token.expires_in}
    if client:
        answer.pop("access_token", None)
        answer["client_access_token"] = token.access_token
    else:
        answer["access_token"] = token.access_token
        answer.setdefault("token_type", token.token_type)
    return answer


class _Grant:
    """What the two token classes share: built from the seed's `creds` and `certs` dicts, and a
    repr that names the client id and nothing secret."""

    def __init__(
        self,
        client_credentials: Mapping[str, str],
        cert: Mapping[str, str],
        *,
        config: PgeConfig | None = None,
    ) -> None:
        self._client = _client(client_credentials, cert, config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self._client.config.client_id!r})"


class OAuth2(_Grant):
    """Authorization-code and refresh grants (PG&E 2015 SDK)."""

    def __init__(
        self,
        client_credentials: Mapping[str, str],
        cert: Mapping[str, str],
        *,
        config: PgeConfig | None = None,
    ) -> None:
        super().__init__(client_credentials, cert, config=config)
        self._refresh_token: str | None = None

    def get_access_token(self, url: str, code: str, redirect_uri: str) -> dict[str, Any]:
        """POST `grant_type=authorization_code`; remembers the refresh token for later."""

        def call() -> dict[str, Any]:
            token = self._client.token_request(
                url=url,
                form={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                },
                now=datetime.now(UTC),
            )
            self._remember(token)
            return _token_dict(token, client=False)

        return _answer(call)

    def get_refresh_token(self, url: str, refresh_token: str | None = None) -> dict[str, Any]:
        """POST `grant_type=refresh_token` with `refresh_token` or the last one received."""
        current = refresh_token or self._refresh_token
        if not current:
            return {
                "status": NO_HTTP_STATUS,
                "error": "invalid: no refresh token (call get_access_token first or pass one)",
            }

        def call() -> dict[str, Any]:
            token = self._client.token_request(
                url=url,
                form={"grant_type": "refresh_token", "refresh_token": current},
                now=datetime.now(UTC),
            )
            self._remember(token)
            return _token_dict(token, client=False)

        return _answer(call)

    def _remember(self, token: TokenResponse) -> None:
        # PG&E may or may not rotate the refresh token: keep the old one when none comes back.
        if token.refresh_token:
            self._refresh_token = token.refresh_token


class ClientCredentials(_Grant):
    """The client-credentials grant (PG&E 2015 SDK)."""

    def get_client_access_token(self, url: str) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            token = self._client.token_request(
                url=url, form={"grant_type": "client_credentials"}, now=datetime.now(UTC)
            )
            return _token_dict(token, client=True)

        return _answer(call)


class Api:
    """The Batch data requests (PG&E 2015 SDK); `url` is `.../resource/Batch/`."""

    def __init__(self, cert: Mapping[str, str], *, config: PgeConfig | None = None) -> None:
        self._client = _client(None, cert, config)

    def __repr__(self) -> str:
        return f"Api(api_base={self._client.config.api_base!r})"

    def sync_request(
        self,
        url: str,
        subscription_id: str,
        usage_point: str,
        published_min: int | str,
        published_max: int | str,
        access_token: str,
    ) -> dict[str, Any]:
        """GET `{url}Subscription/{sid}/UsagePoint/{up}`: 200 and the feed (204: no data)."""

        return self._data(
            access_token,
            published_min,
            published_max,
            base=url,
            subscription_id=subscription_id,
            usage_point_id=usage_point,
        )

    def async_request(
        self,
        url: str,
        subscription_id: str,
        published_min: int | str,
        published_max: int | str,
        access_token: str,
    ) -> dict[str, Any]:
        """GET `{url}Subscription/{sid}`: 202, the data follows by notification."""

        return self._data(
            access_token, published_min, published_max, base=url, subscription_id=subscription_id
        )

    def _data(
        self,
        access_token: str,
        published_min: int | str,
        published_max: int | str,
        **url_parts: str,
    ) -> dict[str, Any]:
        """GET the subscription URL `url_parts` name; any failure (a bad id included) becomes
        the seed's error dict."""

        def call() -> dict[str, Any]:
            target = self._client.subscription_url(**url_parts)
            with self._client.get(
                url=target,
                token=access_token,
                params=published_params(published_min, published_max),
            ) as document:
                return {"status": document.status, "data": document.text()}

        return _answer(call)
