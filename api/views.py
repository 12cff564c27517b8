"""The app API's HTTP surface (`/api/v1/`): thin operations that call one service or
selector each.

Built on django-ninja: the operations' typed signatures generate the OpenAPI 3 document
(`/api/v1/openapi.json`) and the docs page (`/api/v1/docs`, Swagger UI from the files
django-ninja ships, served locally), and query parameters are validated before our code runs.
Plain Django views would need a hand-kept OpenAPI document that schemathesis then checks the
code against; generating it removes that drift. Errors are RFC 9457 problem documents
(`api.problems`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.responses import Status

from api import schemas
from api.auth import consent_key
from api.problems import Problem, code_for_status, problem_response
from customers.consent_sessions import ConsentSessionInvalid, consent_session_create

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="gascap app API",
    version="1",
    description=(
        "Consent sessions, customers, usage points, readings, totals, bills and exports of "
        "the PG&E Share My Data customers this gascap serves. Authenticate with "
        "`Authorization: Bearer <key>` (`python manage.py api_key_create NAME`)."
    ),
    urls_namespace="api_v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)

ERRORS = {401: schemas.Problem, 403: schemas.Problem, 422: schemas.Problem}


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problem_response(
        request, status=exc.status, code=exc.code, detail=exc.detail, **exc.extensions
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem_response(
        request, status=401, code="unauthorized", detail="a valid Bearer API key is required"
    )


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = json.loads(json.dumps(exc.errors, default=str))
    return problem_response(
        request,
        status=422,
        code="invalid-parameters",
        detail="the request's parameters or body are not valid",
        errors=errors,
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem_response(
        request, status=exc.status_code, code=code_for_status(exc.status_code), detail=str(exc)
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem_response(request, status=404, code="not-found", detail="no such resource")


@api.post(
    "/consent-sessions",
    response={201: schemas.ConsentSessionOut, **ERRORS},
    auth=consent_key,
    tags=["consent"],
    summary="Create a single-use consent link for one of the app's users",
)
def consent_session_post(request: HttpRequest, body: schemas.ConsentSessionIn) -> Any:
    try:
        session, token = consent_session_create(
            external_id=body.external_id, return_url=body.return_url, now=timezone.now()
        )
    except ConsentSessionInvalid as exc:
        raise Problem(422, "invalid-parameters", str(exc), field=exc.field) from exc
    url = request.build_absolute_uri(reverse("customers:consent_session", args=[token]))
    return Status(201, {"id": str(session.public_id), "url": url, "expires_at": session.expires_at})
