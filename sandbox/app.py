"""Request dispatch: which part of the sandbox answers which path, mutual TLS where PG&E
requires it, and the request record.

PG&E requires the registered client certificate on the token endpoint and on every API
call, and answers `400 Invalid Certificate` without it (docs/pge-protocol.md "Hosts and transport").
The consent page is a browser page and the control endpoint a local tool: neither needs one.
"""

from __future__ import annotations

import time

from sandbox.api import API_PREFIX, resource_api
from sandbox.config import SandboxConfig
from sandbox.consent import CONSENT_PATHS, consent_page
from sandbox.control import CONTROL_PREFIX, control
from sandbox.notify import Notifier
from sandbox.oauth import TOKEN_PATHS, token_endpoint
from sandbox.state import RecordedRequest, SandboxState
from sandbox.web import Request, Response, connection_reset, text_response

RESOURCE_PATH = API_PREFIX


class SandboxApp:
    """The sandbox without sockets: `handle(request) -> response`."""

    def __init__(self, *, state: SandboxState, config: SandboxConfig, base_url: str) -> None:
        self.state = state
        self.config = config
        self.notifier = Notifier(state)
        self.base_url = base_url.rstrip("/")

    @property
    def api_base(self) -> str:
        return f"{self.base_url}{API_PREFIX}"

    def handle(self, request: Request) -> Response:
        response = self._dispatch(request)
        if not request.path.startswith(CONTROL_PREFIX):
            self.state.request_record(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    token_class=request.token_class,
                    subscription_id=request.subscription_id,
                    client_cert_subject=request.client_cert_subject,
                    status=response.status,
                    at=self.state.clock(),
                )
            )
        return response

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path in CONSENT_PATHS:
            return consent_page(self, request)
        if path.startswith(CONTROL_PREFIX):
            return control(self, request)
        if path in TOKEN_PATHS:
            if request.client_cert_subject is None:
                return text_response(400, "Invalid Certificate")
            fault = self.state.fault_take(
                kinds=("http_503", "rate_limit", "slow", "reset"),
                subscription_id=None,
                endpoint="token",
            )
            if fault is not None and fault.kind == "reset":
                return connection_reset()
            if fault is not None and fault.kind == "http_503":
                return text_response(503, "Service Unavailable")
            if fault is not None and fault.kind == "rate_limit":
                response = text_response(429, "Too Many Requests")
                response.headers.append(("Retry-After", str(max(1, round(fault.seconds)))))
                return response
            if fault is not None:
                time.sleep(fault.seconds)
            return token_endpoint(self, request)
        if path.startswith(API_PREFIX):
            if request.client_cert_subject is None:
                return text_response(400, "Invalid Certificate")
            return resource_api(self, request)
        return text_response(404, "Not Found")
