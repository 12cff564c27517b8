"""`GET /metrics`: Prometheus exposition (ops.metrics), off unless `GASCAP_METRICS_ENABLED`.

Allowed for a request carrying `Authorization: Bearer <one of GASCAP_METRICS_TOKENS>`
(compared in constant time) or coming from an address in `GASCAP_METRICS_ALLOW_IPS`
(addresses or networks; the socket address, never X-Forwarded-For). Off: 404, as if absent.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops.gauges import exposition


def _bearer_ok(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    presented = header[len("Bearer ") :].strip()
    # Every token is compared, so the time taken does not say which one nearly matched.
    matches = [constant_time_compare(presented, t) for t in settings.GASCAP_METRICS_TOKENS if t]
    return any(matches)


def _address_ok(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.GASCAP_METRICS_ALLOW_IPS:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.GASCAP_METRICS_ENABLED:
        return HttpResponseNotFound("not found", content_type="text/plain")
    if not (_bearer_ok(request) or _address_ok(request)):
        response = HttpResponse("unauthorized", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition(now=timezone.now)
    return HttpResponse(body, content_type=content_type)
