"""The consent flow's views: start (also the seed's `/Goto_login`), PG&E's portal URI, the
OAuth callback (also the seed's `/OAuthCallback`) and the "done" page.

Every response carries `Referrer-Policy: no-referrer` and `Cache-Control: no-store`, the pages
load no third-party asset, and the callback answers 303 to a URL without the code
(reliability rule R7, tests 49 and 50). Views stay thin: state rules live in
`customers.states`, the exchange in `customers.consent`.

Anonymous visitors cannot spend PG&E's call budget: start, portal and callback are throttled
per client address (`GASCAP_CONSENT_THROTTLE_*`, counted in the budget's shared store), a
session holds a capped number of unspent states, and a callback whose state is not one we
issued to that session never reaches PG&E.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from customers import tokens
from customers.consent import ConsentFailed, consent_complete
from customers.consent_sessions import (
    ConsentSessionRejected,
    consent_session_finish,
    consent_session_spend,
)
from customers.models import Authorization, ConsentState
from customers.states import ConsentStateRejected, consent_state_consume, consent_state_create
from gascap.admin_site import client_ip_for_lockout
from gascap.pge_budget.budget import throttle_hit

logger = logging.getLogger(__name__)

ViewFunc = Callable[..., HttpResponse]


def consent_headers(view: ViewFunc) -> ViewFunc:
    """No Referer leaves a consent page (the callback URL carries the code), nothing cached."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        response["Cache-Control"] = "no-store"
        return response

    return wrapped


def consent_throttle(view: ViewFunc) -> ViewFunc:
    """429 once the client address made GASCAP_CONSENT_THROTTLE_REQUESTS consent requests in
    the current window (start, portal and callback counted together)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        window = int(settings.GASCAP_CONSENT_THROTTLE_WINDOW)
        allowed = throttle_hit(
            scope="consent",
            subject=client_ip_for_lockout(request) or "unknown",
            limit=int(settings.GASCAP_CONSENT_THROTTLE_REQUESTS),
            window_seconds=window,
            now=timezone.now(),
        )
        if not allowed:
            logger.warning("Consent request throttled for a client address")
            response = _page(request, "consent_failed.html", status=429, reason="throttled")
            response["Retry-After"] = str(max(1, window))
            return response
        return view(request, *args, **kwargs)

    return wrapped


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def _page(
    request: HttpRequest, template: str, *, status: int = 200, **context: Any
) -> HttpResponse:
    return render(request, f"customers/{template}", context, status=status)


def _start(request: HttpRequest, *, source: str) -> HttpResponse:
    state = consent_state_create(
        session=request.session,
        now=timezone.now(),
        next_path=request.GET.get("next"),
        source=source,
    )
    return HttpResponseRedirect(tokens.pge_client().authorize_url(state=state))


@require_GET
@consent_headers
@consent_throttle
def consent_start(request: HttpRequest) -> HttpResponse:
    """Start a consent: a fresh one-time state, then PG&E's (or the sandbox's) consent page."""
    return _start(request, source="start")


@require_GET
@consent_headers
@consent_throttle
def consent_session_start(request: HttpRequest, token: str) -> HttpResponse:
    """The app's single-use link: spend it, then PG&E's consent page with a state tied to it."""
    now = timezone.now()
    try:
        session = consent_session_spend(token=token, now=now)
    except ConsentSessionRejected as exc:
        logger.warning("Consent session link refused: %s", exc.reason)
        return _page(request, "consent_failed.html", status=400, reason="link_expired")
    state = consent_state_create(
        session=request.session, now=now, source="session", consent_session=session
    )
    return HttpResponseRedirect(tokens.pge_client().authorize_url(state=state))


def _to_app(
    state: ConsentState, status: str, authorization: Authorization | None = None
) -> HttpResponse:
    """Back to the app's return_url with the outcome (consent sessions only)."""
    assert state.consent_session is not None  # noqa: S101  (callers check)
    target = consent_session_finish(
        session=state.consent_session, status=status, authorization=authorization
    )
    return HttpResponseSeeOther(target)


@require_GET
@consent_headers
@consent_throttle
def consent_portal(request: HttpRequest) -> HttpResponse:
    """PG&E-initiated consent: the customer started at pge.com and lands on our registered
    portal URI with `scope` and `ThirdPartyID`; we start the redirect flow ourselves."""
    expected = settings.GASCAP_PGE_THIRD_PARTY_ID
    given = request.GET.get("ThirdPartyID", "")
    if expected and given and given != expected:
        logger.warning("Portal visit for another third party id")
        return _page(request, "consent_failed.html", status=400, reason="wrong_party")
    return _start(request, source="portal")


@require_GET
@consent_headers
@consent_throttle
def consent_callback(request: HttpRequest) -> HttpResponse:
    """PG&E's redirect back with `code` and `state` (or `error=access_denied`)."""
    now = timezone.now()
    try:
        state = consent_state_consume(
            state=request.GET.get("state"), session=request.session, now=now
        )
    except ConsentStateRejected as exc:
        logger.warning("Consent callback refused: %s", exc.reason)
        return _page(request, "consent_state_rejected.html", status=400)
    error = request.GET.get("error")
    from_app = state.consent_session is not None
    if error == "access_denied":
        if from_app:
            return _to_app(state, "cancelled")
        return _page(request, "consent_cancelled.html")
    code = request.GET.get("code")
    if error or not code or len(code) > 2000:
        logger.warning("Consent callback without a usable code (error=%s)", (error or "")[:40])
        if from_app:
            return _to_app(state, "failed")
        return _page(request, "consent_failed.html", status=400, reason="no_code")
    try:
        authorization = consent_complete(state=state, code=code, now=now)
    except ConsentFailed as exc:
        if from_app:
            return _to_app(state, "unavailable" if exc.reason == "unavailable" else "failed")
        status = 502 if exc.reason == "unavailable" else 400
        return _page(request, "consent_failed.html", status=status, reason=exc.reason)
    if from_app:
        return _to_app(state, "active", authorization)
    target = state.next_path or reverse("customers:consent_done", args=[authorization.public_id])
    return HttpResponseSeeOther(target)


@require_GET
@consent_headers
def consent_done(request: HttpRequest, public_id: str) -> HttpResponse:
    """Where the callback sends the browser: a page without the code in its URL."""
    authorization = get_object_or_404(Authorization, public_id=public_id)
    return _page(request, "consent_done.html", authorization=authorization)
