"""The control endpoint (`/sandbox/control/...`, JSON) for faults and inspection.

A local development tool: no tokens are ever returned, only token classes.

- `GET  customers`                the demo customers and their consent status
- `GET  requests`                 recorded requests (`?path=` substring filter)
- `GET  notifications`            BatchLists sent and the answers received
- `GET  faults` / `POST faults` / `DELETE faults`   list / add (JSON `Fault`) / clear
- `POST reset`                    forget everything (tokens, consents, faults, records)
- `POST service`                  `{"up": false}`: ReadServiceStatus answers 0
- `POST notify`                   `{"subscription_id": ...}` or `{"bulk": true}`: push a
                                  BatchList now, like PG&E's daily notification
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from sandbox.demo import DEMO_CUSTOMERS, customer_by_subscription
from sandbox.faults import Fault, FaultError
from sandbox.feeds import Hrefs
from sandbox.web import Request, Response, json_response

if TYPE_CHECKING:
    from sandbox.app import SandboxApp

CONTROL_PREFIX = "/sandbox/control/"


def control(app: SandboxApp, request: Request) -> Response:
    action = request.path[len(CONTROL_PREFIX) :].strip("/")
    method = request.method
    try:
        payload = request.json() if method == "POST" and request.body else {}
    except ValueError:
        return json_response(400, {"error": "body must be JSON"})
    if action == "customers" and method == "GET":
        return json_response(200, _customers(app))
    if action == "requests" and method == "GET":
        needle = request.arg("path") or ""
        records = [asdict(r) for r in app.state.requests_list() if needle in r.path]
        return json_response(200, records)
    if action == "notifications" and method == "GET":
        return json_response(200, [asdict(n) for n in app.state.notifications_list()])
    if action == "faults":
        if method == "GET":
            return json_response(200, app.state.faults_list())
        if method == "DELETE":
            app.state.faults_clear()
            return json_response(200, [])
        if method == "POST":
            try:
                fault = Fault.from_dict(payload if isinstance(payload, dict) else {})
            except FaultError as exc:
                return json_response(400, {"error": str(exc)})
            app.state.fault_add(fault)
            return json_response(201, fault.to_dict())
    if action == "reset" and method == "POST":
        app.notifier.cancel_all()
        app.state.reset()
        return json_response(200, {"reset": True})
    if action == "service" and method == "POST":
        app.state.service_set(up=bool(payload.get("up", True)))
        return json_response(200, {"up": app.state.service_up()})
    if action == "notify" and method == "POST":
        return _push(app, payload)
    return json_response(404, {"error": f"no control action {method} {action!r}"})


def _customers(app: SandboxApp) -> list[dict]:
    result = []
    for customer in DEMO_CUSTOMERS:
        auth = app.state.authorization_get(subscription_id=customer.subscription_id)
        result.append(
            {
                "key": customer.key,
                "name": customer.name,
                "description": customer.description,
                "subscription_id": customer.subscription_id,
                "usage_point_ids": [up.usage_point_id for up in customer.usage_points],
                "authorization_status": auth["status"] if auth else None,
            }
        )
    return result


def _push(app: SandboxApp, payload: dict) -> Response:
    hrefs = Hrefs(app.api_base)
    pmin, pmax = payload.get("published_min"), payload.get("published_max")
    if payload.get("bulk"):
        bulk_id = app.config.bulk_id
        cid = app.state.correlation_create(
            kind="bulk", target=bulk_id, published_min=pmin, published_max=pmax
        )
        url = f"{hrefs.bulk(bulk_id)}?correlationID={cid}"
    else:
        sid = str(payload.get("subscription_id", ""))
        if customer_by_subscription(sid) is None:
            return json_response(400, {"error": "unknown subscription_id"})
        cid = app.state.correlation_create(
            kind="subscription", target=sid, published_min=pmin, published_max=pmax
        )
        url = f"{hrefs.subscription_batch(sid)}?correlationID={cid}"
    app.notifier.send(url=app.config.notify_url, resources=[url])
    return json_response(200, {"resources": [url]})
