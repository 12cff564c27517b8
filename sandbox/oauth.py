"""The token endpoint: authorization code, refresh and client credentials grants.

Like PG&E (docs/pge-protocol.md "OAuth2"): mutual TLS required (`400 Invalid Certificate` without a
client certificate), HTTP Basic client authentication, codes single-use for 600 s and bound
to their redirect_uri, refresh tokens rotated (the old one stops working), the client
credentials token answered under `client_access_token`, errors as RFC 6749 JSON.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING

from sandbox.demo import DEFAULT_SCOPE
from sandbox.feeds import Hrefs
from sandbox.state import ACCESS_TOKEN_LIFETIME, CLIENT_TOKEN_LIFETIME
from sandbox.web import Request, Response, json_response

if TYPE_CHECKING:
    from sandbox.app import SandboxApp

TOKEN_PATHS = ("/datacustodian/oauth/v2/token", "/datacustodian/test/oauth/v2/token")
CLIENT_SCOPE = "FB=34_35_39;"
_NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def oauth_error(status: int, error: str, description: str) -> Response:
    headers = list(_NO_STORE)
    if error == "invalid_client":
        headers.append(("WWW-Authenticate", 'Basic realm="sandbox"'))
    return json_response(status, {"error": error, "error_description": description}, headers)


def _client_authenticated(app: SandboxApp, request: Request) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    id_ok = hmac.compare_digest(client_id.encode(), app.config.client_id.encode())
    secret_ok = hmac.compare_digest(secret.encode(), app.config.client_secret.encode())
    return id_ok and secret_ok


def _customer_tokens(app: SandboxApp, subscription_id: str, access: str, refresh: str) -> Response:
    hrefs = Hrefs(app.api_base)
    auth = app.state.authorization_get(subscription_id=subscription_id) or {}
    return json_response(
        200,
        {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": auth.get("scope", DEFAULT_SCOPE),
            "resourceURI": hrefs.subscription_batch(subscription_id),
            "authorizationURI": hrefs.authorization(subscription_id),
        },
        _NO_STORE,
    )


def token_endpoint(app: SandboxApp, request: Request) -> Response:
    if request.method != "POST":
        return oauth_error(405, "invalid_request", "the token endpoint takes POST")
    if not _client_authenticated(app, request):
        return oauth_error(401, "invalid_client", "client authentication failed")
    form = request.form()
    grant = form.get("grant_type", "")
    if grant == "authorization_code":
        code, redirect_uri = form.get("code", ""), form.get("redirect_uri", "")
        if not code or not redirect_uri:
            return oauth_error(400, "invalid_request", "code and redirect_uri are required")
        subscription_id, reason = app.state.code_redeem(code=code, redirect_uri=redirect_uri)
        if subscription_id is None:
            return oauth_error(400, "invalid_grant", reason)
        request.subscription_id = subscription_id
        access, refresh = app.state.tokens_issue(subscription_id=subscription_id)
        return _customer_tokens(app, subscription_id, access, refresh)
    if grant == "refresh_token":
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            return oauth_error(400, "invalid_request", "refresh_token is required")
        rotated = app.state.refresh_rotate(refresh_token=refresh_token)
        if rotated is None:
            return oauth_error(400, "invalid_grant", "refresh token unknown, used or revoked")
        subscription_id, access, refresh = rotated
        request.subscription_id = subscription_id
        return _customer_tokens(app, subscription_id, access, refresh)
    if grant == "client_credentials":
        token = app.state.client_token_issue()
        # PG&E answers the client token under `client_access_token`, not `access_token`.
        return json_response(
            200,
            {
                "client_access_token": token,
                "token_type": "Bearer",
                "expires_in": CLIENT_TOKEN_LIFETIME,
                "scope": CLIENT_SCOPE,
            },
            _NO_STORE,
        )
    return oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")
