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
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone


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
