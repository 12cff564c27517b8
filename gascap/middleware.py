"""Request-wide display and browser-security concerns: the operators' admin shows PG&E's local
time, and every response carries a Content-Security-Policy unless its view set one.

PG&E's days are Pacific days (docs/pge-protocol.md): an interval starting 07:00Z on a winter day is
the first hour of that Pacific day. The database and `TIME_ZONE` stay UTC; only admin pages render
in `GASCAP_LOCAL_TIME_ZONE`, and the admin header says which zone it shows.

The policy (docs/reliability.md test 57) allows nothing from other origins. Django's admin needs no
inline script (its JSON data blocks are not executed); inline `style` attributes and the
consent page's `<style>` need `'unsafe-inline'` for styles only. `frame-ancestors 'none'`
matches `X_FRAME_OPTIONS = "DENY"` for browsers that prefer CSP. The policy is the setting
`GASCAP_CONTENT_SECURITY_POLICY`.

`RequestIdMiddleware` gives every request an id (a well-formed incoming `X-Request-ID`, as a
proxy sets it, or a new one), answers it in `X-Request-ID`, and puts it in the log context
(`ops.log_context`) so every log line of the request, and of the tasks it queues, carries it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from ops.log_context import log_context_set

# A proxy's id is kept only when it is short and plain: it ends up in every log line.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class AdminLocalTimeAndSecurityHeadersMiddleware:
    """Activate the local zone for admin requests; add the CSP header to responses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        admin_prefix = "/" + settings.GASCAP_ADMIN_PATH
        if request.path.startswith(admin_prefix):
            timezone.activate(_zone(settings.GASCAP_LOCAL_TIME_ZONE))
            try:
                response = self.get_response(request)
            finally:
                timezone.deactivate()
        else:
            response = self.get_response(request)
        policy = settings.GASCAP_CONTENT_SECURITY_POLICY  # empty: no header
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class RequestIdMiddleware:
    """X-Request-ID in, X-Request-ID out, and in the log context in between."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Set, not scoped: Django logs a 4xx/5xx after the middleware chain returned, and that
        # line must carry the id too. `request_finished` clears it (ops.apps).
        log_context_set(request_id=request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
