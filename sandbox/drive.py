"""Driving the consent page from a script (no browser): what a customer's clicks do.

`consent_decide(authorize_url=..., customer="electric")` opens the page gascap redirected to,
submits the form with Approve (or Deny) and returns the URL the browser would be sent back to
(gascap's callback with `code` and `state`, or `error=access_denied`). Used by `make demo`
and the end-to-end tests.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests

CONSENT_TIMEOUT = 10.0


class ConsentRefused(RuntimeError):
    """The consent page answered with an error page instead of a redirect."""


def consent_decide(
    *, authorize_url: str, customer: str, decision: str = "approve", ca_bundle: str | None = None
) -> str:
    """Submit the consent form for `customer` and return the redirect target (not followed)."""
    if decision not in ("approve", "deny"):
        raise ValueError("decision must be approve or deny")
    parts = urlsplit(authorize_url)
    params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    verify: str | bool = ca_bundle if ca_bundle else True
    with requests.Session() as session:
        session.trust_env = False  # a local page: no proxies, and our CA bundle, not the env's
        page = session.get(authorize_url, timeout=CONSENT_TIMEOUT, verify=verify)
        if page.status_code != 200:
            raise ConsentRefused(f"consent page answered {page.status_code}")
        form_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        answer = session.post(
            form_url,
            data={**params, "customer": customer, "decision": decision},
            timeout=CONSENT_TIMEOUT,
            verify=verify,
            allow_redirects=False,
        )
    location = answer.headers.get("Location")
    if answer.status_code != 302 or not location:
        raise ConsentRefused(f"consent form answered {answer.status_code}")
    return location
