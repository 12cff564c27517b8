"""The consent page (`myAuthorization`): a plain HTML page listing the demo customers with
Approve and Deny, drivable by a script with a form POST (`customer`, `decision`, optional
`authorized_days`).

As at PG&E (docs/pge-protocol.md "OAuth2" step 1): a wrong client id or an unregistered redirect URI
gives an error page and never a redirect; Approve returns to `redirect_uri?code=...&state=...`,
Deny to `redirect_uri?error=access_denied&state=...`. No third-party assets.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from sandbox.demo import DEMO_CUSTOMERS, customer_by_key
from sandbox.web import Request, Response

if TYPE_CHECKING:
    from sandbox.app import SandboxApp

CONSENT_PATHS = ("/myAuthorization", "/myAuthorization/")
_HEADERS = [
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]
_STYLE = "body{font-family:sans-serif;max-width:40em;margin:2em auto}label{display:block}"


def _page(status: int, title: str, body: str) -> Response:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(status, html.encode(), "text/html; charset=utf-8", list(_HEADERS))


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _check(app: SandboxApp, params: dict[str, str]) -> str | None:
    """Why the request cannot be served (shown as a page, never redirected), or None."""
    if params.get("client_id") != app.config.client_id:
        return "Unknown client_id."
    if params.get("redirect_uri") not in app.config.redirect_uris:
        return "The redirect_uri is not registered for this client."
    if params.get("response_type") != "code":
        return "response_type must be code."
    return None


def consent_page(app: SandboxApp, request: Request) -> Response:
    if request.method == "POST":
        params = request.form()
    elif request.method == "GET":
        params = {k: v[0] for k, v in request.query.items()}
    else:
        return _page(405, "Method not allowed", "")
    problem = _check(app, params)
    if problem:
        return _page(400, "Share My Data: request refused", f"<p>{escape(problem)}</p>")
    if request.method == "GET":
        return _form(params)
    state = params.get("state", "")
    decision = params.get("decision", "")
    redirect_uri = params["redirect_uri"]
    if decision == "deny":
        target = _with_query(redirect_uri, {"error": "access_denied", "state": state})
        return Response(302, b"", headers=[("Location", target), *_HEADERS])
    customer = customer_by_key(params.get("customer", ""))
    if decision != "approve" or customer is None:
        return _page(400, "Share My Data: choose a customer", "<p>Pick a customer.</p>")
    days = params.get("authorized_days", "").strip()
    if days and not (days.isascii() and days.isdigit() and 0 < int(days) <= 36500):
        return _page(400, "Share My Data: request refused", "<p>Bad number of days.</p>")
    app.state.authorization_grant(
        subscription_id=customer.subscription_id,
        authorized_seconds=int(days) * 86400 if days else None,
    )
    code = app.state.code_issue(customer=customer, redirect_uri=redirect_uri)
    request.subscription_id = customer.subscription_id
    target = _with_query(redirect_uri, {"code": code, "state": state})
    return Response(302, b"", headers=[("Location", target), *_HEADERS])


def _form(params: dict[str, str]) -> Response:
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{escape(params.get(name, ''))}'>"
        for name in ("client_id", "redirect_uri", "response_type", "state", "login")
    )
    choices = "".join(
        f"<label><input type='radio' name='customer' value='{escape(c.key)}'"
        f"{' checked' if index == 0 else ''}> {escape(c.name)} "
        f"<small>({escape(c.description)})</small></label>"
        for index, c in enumerate(DEMO_CUSTOMERS)
    )
    guest = "<p>Signed in as a guest.</p>" if params.get("login") == "guest" else ""
    body = (
        f"{guest}<p>A third party asks to read your energy usage data. "
        "This is the gascap sandbox: every customer here is fictional.</p>"
        f"<form method='post' action='/myAuthorization'>{hidden}"
        f"<fieldset><legend>Customer</legend>{choices}</fieldset>"
        # The sandbox's own option (no PG&E source describes the page's choices): a consent
        # is open-ended like PG&E's sample unless a number of days is given.
        "<p><label>Share for <input name='authorized_days' inputmode='numeric' size='5'> "
        "days (empty: until cancelled)</label></p>"
        "<p><button name='decision' value='approve'>Approve</button> "
        "<button name='decision' value='deny'>Deny</button></p></form>"
    )
    return _page(200, "Share My Data: authorize access", body)
