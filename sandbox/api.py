"""The resource API under `/GreenButtonConnect/espi/1_1/resource/`: Batch (sync and async),
the resource URLs named in notifications, single resources, Authorization and
ReadServiceStatus, with PG&E's token classes (docs/pge-protocol.md "Data APIs") and the faults.

Token rules: a customer access token reaches only its own subscription's paths; the client
token reaches Bulk, Authorization and ReadServiceStatus; anything else is 403, as is an
unknown or expired token (PG&E answers 403 for an expired token).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from sandbox import access_xml, faults, feeds, scale
from sandbox.demo import (
    DEMO_CUSTOMERS,
    customer_by_subscription,
    reading_type_by_id,
)
from sandbox.feeds import FeedPart, Hrefs
from sandbox.readings import days_in_range, local_date, local_midnight
from sandbox.state import customers_with_consent
from sandbox.web import ATOM_XML, Request, Response, connection_reset, text_response

if TYPE_CHECKING:
    from sandbox.app import SandboxApp

API_PREFIX = "/GreenButtonConnect/espi/1_1/resource/"
_SID = re.compile(r"^(?:Batch/)?(?:Subscription|Authorization)/([^/]+)")
CUSTOMER, CLIENT, EITHER = "customer", "client", "either"
INVALID = "invalid"  # a token class name, not a secret


def _forbidden(reason: str) -> Response:
    return text_response(403, f"Forbidden: {reason}")


def _int_arg(request: Request, name: str) -> int | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    return int(raw)  # ValueError -> 400 in resource_api


def resource_api(app: SandboxApp, request: Request) -> Response:
    rel = request.path[len(API_PREFIX) :]
    match = _SID.match(rel)
    request.subscription_id = match.group(1) if match else None
    sid = request.subscription_id

    # Faults that happen before PG&E looks at the request.
    fault = app.state.fault_take(
        kinds=("http_503", "rate_limit", "slow", "redirect", "reset"),
        subscription_id=sid,
        endpoint="api",
    )
    if fault is not None:
        if fault.kind == "reset":
            return connection_reset()
        if fault.kind == "http_503":
            return text_response(503, "Service Unavailable")
        if fault.kind == "rate_limit":
            response = text_response(429, "Too Many Requests")
            response.headers.append(("Retry-After", str(max(1, round(fault.seconds)))))
            return response
        if fault.kind == "redirect":
            return Response(302, b"", headers=[("Location", fault.location)])
        time.sleep(fault.seconds)  # slow: then answer normally

    route = _route(request.method, rel)
    if route is None:
        return text_response(404, "Not Found")
    needed, handler = route
    token_problem = _check_token(app, request, needed)
    if token_problem is not None:
        return token_problem
    if app.state.fault_take(kinds=("expired_token",), subscription_id=sid, endpoint="api"):
        return _forbidden("token expired")
    try:
        response = handler(app, request, rel)
    except ValueError:
        return text_response(400, "Bad Request: published-min/max must be epoch seconds")
    if response.status == 200 and response.content_type == ATOM_XML:
        response = _body_faults(app, request, response)
    return response


def _check_token(app: SandboxApp, request: Request, needed: str) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        request.token_class = None
        return _forbidden("bearer token required")
    info = app.state.token_lookup(token=token.strip())
    if info is None:
        request.token_class = INVALID
        return _forbidden("token unknown or expired")
    request.token_class = info.token_class
    if needed == EITHER:
        return None
    if info.token_class != needed:
        return _forbidden(f"this resource needs a {needed} token")
    if needed == CUSTOMER and info.subscription_id != request.subscription_id:
        return _forbidden("token not valid for this subscription")
    return None


def _body_faults(app: SandboxApp, request: Request, response: Response) -> Response:
    sid = request.subscription_id
    fault = app.state.fault_take(
        kinds=("malformed_xml", "oversized", "gzip_bomb"), subscription_id=sid, endpoint="api"
    )
    if fault is None:
        return response
    if fault.kind == "malformed_xml":
        body = response.body if isinstance(response.body, bytes) else b"".join(response.body)
        response.body = faults.malformed(body)
    elif fault.kind == "oversized":
        response.body = faults.padded_feed(fault.size)
    else:
        response.body = faults.gzip_bomb(fault.size)
        response.headers.append(("Content-Encoding", "gzip"))
    return response


Handler = Callable[["SandboxApp", Request, str], Response]


def _route(method: str, rel: str) -> tuple[str, Handler] | None:
    parts = rel.rstrip("/").split("/")
    if method == "GET":
        if parts[:2] == ["Batch", "Subscription"] and len(parts) == 5 and parts[3] == "UsagePoint":
            return CUSTOMER, _sync_usage_point
        if parts[:2] == ["Batch", "Subscription"] and len(parts) == 3:
            return CUSTOMER, _batch_subscription
        if parts[:2] == ["Batch", "Bulk"] and len(parts) == 3:
            return CLIENT, _batch_bulk
        if parts[0] == "Subscription" and len(parts) == 3 and parts[2] == "UsagePoint":
            return CUSTOMER, _usage_point_collection
        if parts[0] == "Subscription" and len(parts) == 4 and parts[2] == "UsagePoint":
            return CUSTOMER, _usage_point_entry
        if parts[0] == "ReadingType" and len(parts) == 2:
            return EITHER, _reading_type
        if parts[0] == "LocalTimeParameters" and len(parts) == 2:
            return EITHER, _local_time_parameters
        if parts == ["Authorization"]:
            return CLIENT, _authorization_feed
        if parts[0] == "Authorization" and len(parts) == 2:
            return CLIENT, _authorization_entry
        if parts == ["ReadServiceStatus"]:
            return CLIENT, _service_status
    if method == "DELETE" and parts[0] == "Authorization" and len(parts) == 2:
        return CLIENT, _authorization_delete
    return None


def _today(app: SandboxApp) -> date:
    return local_date(app.state.clock())


def _feed(
    app: SandboxApp,
    request: Request,
    parts: list[FeedPart],
    pmin: int | None,
    pmax: int | None,
    *,
    stream: bool = False,
) -> Response:
    today = _today(app)
    days = days_in_range(pmin, pmax, today=today, default_days=app.config.default_days)
    if not days or not parts:
        # Since 2023 PG&E answers 204 when there is no data in the range.
        return Response(204, b"")
    self_href = app.api_base.rstrip("/") + "/" + request.path[len(API_PREFIX) :]
    chunks = feeds.usage_feed_chunks(
        api_base=app.api_base, self_href=self_href, parts=parts, days=days, today=today
    )
    # Scale-mode documents are streamed: tens of MB are never one string in the sandbox.
    return Response(200, chunks if stream else b"".join(chunks), ATOM_XML)


def _customer_parts(subscription_id: str) -> list[FeedPart]:
    customer = customer_by_subscription(subscription_id)
    if customer is None:
        return []
    return [FeedPart(customer, up) for up in customer.usage_points]


def _sync_usage_point(app: SandboxApp, request: Request, rel: str) -> Response:
    upid = rel.rstrip("/").split("/")[4]
    parts = [
        p
        for p in _customer_parts(request.subscription_id or "")
        if p.usage_point.usage_point_id == upid
    ]
    if not parts:
        return text_response(404, "Not Found")
    return _feed(
        app, request, parts, _int_arg(request, "published-min"), _int_arg(request, "published-max")
    )


def _accept_async(
    app: SandboxApp, request: Request, *, kind: str, target: str, url: str
) -> Response:
    """202 now, a BatchList naming `url?correlationID=...` later."""
    correlation_id = app.state.correlation_create(
        kind=kind,
        target=target,
        published_min=_int_arg(request, "published-min"),
        published_max=_int_arg(request, "published-max"),
    )
    return _notify_later(app, request, [f"{url}?correlationID={correlation_id}"])


def _accept_bulk_scaled(app: SandboxApp, request: Request, *, bulk_id: str, url: str) -> Response:
    """Scale mode: 202 now, one BatchList naming one correlation document per slice of the
    synthetic customers later (docs/pge-protocol.md: a Bulk BatchList names several)."""
    resources = []
    for first, end in scale.scale_slices(
        count=app.config.scale_customers, per_document=app.config.scale_per_document
    ):
        correlation_id = app.state.correlation_create(
            kind="bulk",
            target=bulk_id,
            published_min=_int_arg(request, "published-min"),
            published_max=_int_arg(request, "published-max"),
            extra={"scale_first": first, "scale_end": end},
        )
        resources.append(f"{url}?correlationID={correlation_id}")
    return _notify_later(app, request, resources)


def _notify_later(app: SandboxApp, request: Request, resources: list[str]) -> Response:
    sid = request.subscription_id
    duplicate = app.state.fault_take(
        kinds=("duplicate_notification",), subscription_id=sid, endpoint="notify"
    )
    copies = 2 if duplicate else 1
    early = app.state.fault_take(
        kinds=("notify_before_202",), subscription_id=sid, endpoint="notify"
    )
    notify_url = app.config.notify_url
    if early:
        for _ in range(copies):
            app.notifier.send(url=notify_url, resources=resources)
    else:
        app.notifier.schedule(
            url=notify_url, resources=resources, delay=app.config.notify_delay, copies=copies
        )
    return Response(202, b"")


def _correlated(app: SandboxApp, request: Request, kind: str, target: str) -> dict | None:
    correlation_id = request.arg("correlationID")
    if correlation_id is None:
        return None
    record = app.state.correlation_get(correlation_id=correlation_id)
    if record is None or record["kind"] != kind or record["target"] != target:
        return {}
    return record


def _batch_subscription(app: SandboxApp, request: Request, rel: str) -> Response:
    sid = request.subscription_id or ""
    if customer_by_subscription(sid) is None:
        return text_response(404, "Not Found")
    record = _correlated(app, request, "subscription", sid)
    if record is None:
        hrefs = Hrefs(app.api_base)
        return _accept_async(
            app, request, kind="subscription", target=sid, url=hrefs.subscription_batch(sid)
        )
    if not record:
        return text_response(404, "Not Found: unknown correlationID")
    return _feed(
        app, request, _customer_parts(sid), record["published_min"], record["published_max"]
    )


def _batch_bulk(app: SandboxApp, request: Request, rel: str) -> Response:
    bulk_id = rel.rstrip("/").split("/")[2]
    if bulk_id != app.config.bulk_id:
        return _forbidden("unknown BulkID for this client")
    record = _correlated(app, request, "bulk", bulk_id)
    if record is None:
        hrefs = Hrefs(app.api_base)
        if app.config.scale_customers:
            return _accept_bulk_scaled(app, request, bulk_id=bulk_id, url=hrefs.bulk(bulk_id))
        return _accept_async(app, request, kind="bulk", target=bulk_id, url=hrefs.bulk(bulk_id))
    if not record:
        return text_response(404, "Not Found: unknown correlationID")
    if "scale_first" in record:
        customers = scale.scale_customers(record["scale_first"], record["scale_end"])
        parts = [FeedPart(c, up) for c in customers for up in c.usage_points]
        return _feed(
            app, request, parts, record["published_min"], record["published_max"], stream=True
        )
    # Bulk covers every authorized service agreement of the third party (docs/espi-model.md §3).
    parts = [FeedPart(c, up) for c in customers_with_consent(app.state) for up in c.usage_points]
    return _feed(app, request, parts, record["published_min"], record["published_max"])


def _stamp(app: SandboxApp) -> int:
    return local_midnight(_today(app))


def _usage_point_collection(app: SandboxApp, request: Request, rel: str) -> Response:
    customer = customer_by_subscription(request.subscription_id or "")
    if customer is None:
        return text_response(404, "Not Found")
    body = feeds.usage_point_feed(api_base=app.api_base, customer=customer, stamp=_stamp(app))
    return Response(200, body, ATOM_XML)


def _usage_point_entry(app: SandboxApp, request: Request, rel: str) -> Response:
    upid = rel.rstrip("/").split("/")[3]
    for part in _customer_parts(request.subscription_id or ""):
        if part.usage_point.usage_point_id == upid:
            entry = feeds.usage_point_entry(Hrefs(app.api_base), part, _stamp(app))
            return Response(200, entry.encode(), ATOM_XML)
    return text_response(404, "Not Found")


def _reading_type(app: SandboxApp, request: Request, rel: str) -> Response:
    series = reading_type_by_id(rel.rstrip("/").split("/")[1])
    if series is None:
        return text_response(404, "Not Found")
    entry = feeds.reading_type_entry(Hrefs(app.api_base), series, _stamp(app))
    return Response(200, entry.encode(), ATOM_XML)


def _local_time_parameters(app: SandboxApp, request: Request, rel: str) -> Response:
    if rel.rstrip("/").split("/")[1] != feeds.LOCAL_TIME_PARAMETERS_ID:
        return text_response(404, "Not Found")
    entry = feeds.local_time_parameters_entry(Hrefs(app.api_base), _stamp(app))
    return Response(200, entry.encode(), ATOM_XML)


# PG&E's open-ended consent (pge_cmd_2015_authorization_entry.xml): start + duration of the
# authorizedPeriod ends at 253404243200000 ms and of the publishedPeriod at 253422243200000 ms,
# both past year 9999. The sandbox ends its open-ended periods at the same instants.
OPEN_ENDED_AUTHORIZED_END_MS = 1440585200000 + 251963658000000
OPEN_ENDED_PUBLISHED_END_MS = 1395513200000 + 252026730000000


def _authorization_view(sid: str, record: dict) -> access_xml.AuthorizationView:
    # PG&E gives Authorization periods in milliseconds (pge_cmd_2015_authorization_entry.xml)
    # and `expires_at` in seconds: the expiry of the access token (ESPI schema), not the
    # consent's end (docs/pge-protocol.md "Data APIs").
    start_ms = int(record["authorized_start"]) * 1000
    published_start_ms = int(record["published_start"]) * 1000
    end = record.get("authorized_end")
    if end is None:
        authorized_end_ms, published_end_ms = (
            OPEN_ENDED_AUTHORIZED_END_MS,
            OPEN_ENDED_PUBLISHED_END_MS,
        )
    else:
        authorized_end_ms = published_end_ms = int(end) * 1000
    # No token issued yet (consented, code not exchanged): no source says what PG&E shows;
    # the sandbox shows the grant time, a moment already past. gascap reads nothing from it.
    token_expires_at = record.get("token_expires_at") or record["authorized_start"]
    return access_xml.AuthorizationView(
        subscription_id=sid,
        status=int(record["status"]),
        authorized_start_ms=start_ms,
        authorized_duration_ms=authorized_end_ms - start_ms,
        published_start_ms=published_start_ms,
        published_duration_ms=published_end_ms - published_start_ms,
        expires_at=int(token_expires_at),
        scope=record["scope"],
        updated=int(record["updated"]),
    )


def _authorization_feed(app: SandboxApp, request: Request, rel: str) -> Response:
    known = {c.subscription_id for c in DEMO_CUSTOMERS}
    views = [
        _authorization_view(sid, record)
        for sid, record in sorted(app.state.authorizations_all().items())
        if sid in known
    ]
    body = access_xml.authorization_feed(api_base=app.api_base, auths=views, stamp=_stamp(app))
    return Response(200, body, ATOM_XML)


def _authorization_entry(app: SandboxApp, request: Request, rel: str) -> Response:
    sid = request.subscription_id or ""
    record = app.state.authorization_get(subscription_id=sid)
    if record is None:
        return text_response(404, "Not Found")
    entry = access_xml.authorization_entry(Hrefs(app.api_base), _authorization_view(sid, record))
    return Response(200, entry.encode(), ATOM_XML)


def _authorization_delete(app: SandboxApp, request: Request, rel: str) -> Response:
    sid = request.subscription_id or ""
    if app.state.authorization_get(subscription_id=sid) is None:
        return text_response(404, "Not Found")
    app.state.authorization_revoke(subscription_id=sid)
    return Response(204, b"")


def _service_status(app: SandboxApp, request: Request, rel: str) -> Response:
    return Response(200, access_xml.service_status(up=app.state.service_up()), "application/xml")
