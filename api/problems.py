"""Errors of the app API as RFC 9457 problem documents (`application/problem+json`).

Views raise `Problem` (or one of Django's / django-ninja's errors); `problem_response` renders
it. `ProblemDocumentMiddleware` turns every other error answer under `/api/` (an unknown path,
a wrong method, Django's own 404/500 pages) into a problem document as well, so a client
never has to parse HTML.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
API_PREFIX = "/api/"
# Problem types are relative URIs under the API; each is described in the OpenAPI document.
TYPE_BASE = "/api/v1/problems/"


class Problem(Exception):
    """An anticipated error with a stable machine code (`code`, also the type's last segment)."""

    def __init__(self, status: int, code: str, detail: str = "", **extensions: Any) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.extensions = extensions


def problem_body(
    *, status: int, code: str, detail: str = "", instance: str = "", **extensions: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(
    request: HttpRequest | None,
    *,
    status: int,
    code: str,
    detail: str = "",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> HttpResponse:
    body = problem_body(
        status=status,
        code=code,
        detail=detail,
        instance=request.path if request is not None else "",
        **extensions,
    )
    response = HttpResponse(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="gascap"'
    return response


_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-parameters",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}


def code_for_status(status: int) -> str:
    return _CODES.get(status, "error" if status < 500 else "internal-error")


class ProblemDocumentMiddleware:
    """Every 4xx/5xx answer under /api/ that is not already a problem document becomes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith(CONTENT_TYPE):
            return response
        status = response.status_code
        headers = {}
        if response.has_header("Allow"):
            headers["Allow"] = response["Allow"]
        return problem_response(
            request, status=status, code=code_for_status(status), headers=headers
        )
