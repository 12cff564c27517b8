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
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger
from ninja.responses import Status

from api import exports, schemas, selectors, totals
from api.auth import consent_key, read_key
from api.problems import CONTENT_TYPE, Problem, code_for_status, problem_response
from api.readings_page import CursorInvalid, readings_page
from customers.consent_sessions import ConsentSessionInvalid, consent_session_create
from ingest.models import UsagePoint

logger = logging.getLogger(__name__)


class LocalSwagger(Swagger):
    """The Swagger UI page from the files django-ninja ships, served locally, with "ninja" not
    an installed app: the app entry imported ninja (pydantic included) into every process
    at setup, ~11 MB per Celery worker and import that never serves the API (docs/scale.md).
    Without it ninja would use a CDN page; ours is its own template (api/swagger.html)."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        auth = api.auth if isinstance(api.auth, list | tuple) else []
        context = {
            "swagger_settings": json.dumps(self.settings, indent=1),
            "api": api,
            "add_csrf": any(getattr(a, "csrf", False) for a in auth),
        }
        return render(request, "api/swagger.html", context)


class GascapApi(NinjaAPI):
    """NinjaAPI whose OpenAPI document names the media types we really send: problem
    documents as `application/problem+json`, exports as CSV or Atom XML."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        for path, item in schema["paths"].items():
            for operation in item.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        response["content"] = {CONTENT_TYPE: content["application/json"]}
                ok = [key for key in operation.get("responses", {}) if int(key) == 200]
                if path.endswith("/export") and ok:
                    operation["responses"][ok[0]]["content"] = {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/atom+xml": {"schema": {"type": "string"}},
                    }
        return schema


# The flow names a series answers to (`selectors.series_flow`: ESPI flowDirection in words),
# one set for every endpoint that filters by flow.
FlowName = Literal["delivered", "received", "net", "total", "unknown"]

api = GascapApi(
    title="gascap app API",
    version="1",
    description=(
        "Consent sessions, customers, usage points, readings, totals, bills and exports of "
        "the PG&E Share My Data customers this gascap serves. Authenticate with "
        "`Authorization: Bearer <key>` (`python manage.py api_key_create NAME`)."
    ),
    urls_namespace="api_v1",
    docs_url="/docs",
    docs=LocalSwagger(),
    openapi_url="/openapi.json",
)

ERRORS = {400: schemas.Problem, 401: schemas.Problem, 403: schemas.Problem, 422: schemas.Problem}


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


# --- reads ---------------------------------------------------------------------------------

NOT_FOUND = {401: schemas.Problem, 403: schemas.Problem, 404: schemas.Problem}
READ_ERRORS = {**NOT_FOUND, 422: schemas.Problem}


def _read(
    path: str, *, ok: Any, summary: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A read operation: the read scope's key, the "read" tag, `ok` as its 200 answer and the
    read errors (401, 403, 404, 422) as problem documents."""
    return api.get(
        path, response={200: ok, **READ_ERRORS}, auth=read_key, tags=["read"], summary=summary
    )


def _json(data: dict[str, Any]) -> HttpResponse:
    """Serialise a large answer directly (its shape is the operation's documented schema,
    which schemathesis checks): validating thousands of rows through pydantic on the way out
    costs more than the query that produced them."""
    return HttpResponse(
        json.dumps(data, default=_json_default, separators=(",", ":")),
        content_type="application/json",
    )


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _point(usage_point_id: int) -> UsagePoint:
    try:
        return selectors.usage_point_get(usage_point_pk=usage_point_id)
    except selectors.ResourceNotFound as exc:
        raise Problem(404, "not-found", "no such usage point") from exc


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _range(start: datetime | date, end: datetime | date) -> tuple[datetime, datetime]:
    """Aware bounds; a date (or naive time) is local time (`GASCAP_LOCAL_TIME_ZONE`)."""
    zone = totals.local_zone()
    bounds = []
    for value in (start, end):
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=zone)
        elif value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        bounds.append(value)
    if bounds[1] <= bounds[0]:
        raise Problem(422, "invalid-range", "end must be after start")
    if bounds[0] < EARLIEST or bounds[1] > LATEST:
        # No reading lies outside (the PostgreSQL importer refuses others: ingest/partitions.py);
        # local times before 1883 carry LMT offsets with seconds (-07:52:58) that an RFC 3339
        # date-time cannot write (schemathesis found year 0001).
        raise Problem(422, "invalid-range", "start and end must lie between 1970 and 9998")
    return bounds[0], bounds[1]


@_read(
    "/customers/{external_id}",
    ok=schemas.CustomerOut,
    summary="A customer of the app: consents and usage points",
)
def customer_get(request: HttpRequest, external_id: str) -> Any:
    try:
        customer = selectors.customer_get(external_id=external_id)
    except selectors.ResourceNotFound as exc:
        raise Problem(404, "not-found", "no such customer") from exc
    return selectors.customer_describe(customer=customer)


@_read(
    "/usage-points/{usage_point_id}",
    ok=schemas.UsagePointOut,
    summary="A usage point: service, flows, intervals, coverage",
)
def usage_point_get(request: HttpRequest, usage_point_id: int) -> Any:
    point = _point(usage_point_id)
    return selectors.usage_point_describe(point=point, local_zone=totals.local_zone())


@_read(
    "/usage-points/{usage_point_id}/readings",
    ok=schemas.ReadingsPage,
    summary="Interval readings, a page at a time",
)
def readings_get(
    request: HttpRequest,
    usage_point_id: int,
    start: datetime | date,
    end: datetime | date,
    flow: FlowName | None = None,
    cursor: str | None = None,
    limit: int | None = Query(None, ge=1),
) -> Any:
    point = _point(usage_point_id)
    begin, finish = _range(start, end)
    size = min(
        limit or settings.GASCAP_API_READINGS_PAGE_SIZE,
        settings.GASCAP_API_READINGS_MAX_PAGE_SIZE,
    )
    try:
        return _json(
            readings_page(
                series=selectors.usage_point_series(point=point, flow=flow),
                start=begin,
                end=finish,
                cursor=cursor,
                limit=size,
            )
        )
    except CursorInvalid as exc:
        raise Problem(422, "invalid-cursor", str(exc)) from exc


@_read(
    "/usage-points/{usage_point_id}/totals",
    ok=schemas.TotalsOut,
    summary="Totals per local hour, day or month (America/Los_Angeles)",
)
def totals_get(
    request: HttpRequest,
    usage_point_id: int,
    interval: Literal["hour", "day", "month"],
    start: datetime | date,
    end: datetime | date,
    flow: FlowName | None = None,
) -> Any:
    point = _point(usage_point_id)
    begin, finish = _range(start, end)
    if finish - begin > timedelta(days=settings.GASCAP_API_TOTALS_MAX_DAYS):
        raise Problem(422, "range-too-long", "the range is longer than the API allows")
    zone = totals.local_zone()
    begin, finish = totals.range_align(start=begin, end=finish, interval=interval)
    series_out = []
    for series in selectors.usage_point_series(point=point, flow=flow):
        info = selectors.series_describe(series)
        exponent = info["value_exponent"]
        rows = totals.series_totals(series=series, interval=interval, start=begin, end=finish)
        series_out.append(
            {
                "series": series.pk,
                "flow": info["flow"],
                "unit": info["unit"],
                "totals": [
                    {
                        "start": row.start,
                        "end": row.end,
                        "value": selectors.decimal_text(row.value, exponent)
                        if info["units_known"]
                        else None,
                        "readings": row.readings,
                        "complete": row.complete,
                        "cost": selectors.decimal_text(row.cost, selectors.COST_EXPONENT),
                    }
                    for row in rows
                ],
            }
        )
    return _json(
        {
            "interval": interval,
            "time_zone": str(zone),
            "start": begin,
            "end": finish,
            "series": series_out,
        }
    )


@_read(
    "/usage-points/{usage_point_id}/bills",
    ok=schemas.BillsOut,
    summary="PG&E's billing-period summaries (UsageSummary)",
)
def bills_get(request: HttpRequest, usage_point_id: int) -> Any:
    return {"bills": selectors.usage_point_bills(point=_point(usage_point_id))}


@_read(
    "/usage-points/{usage_point_id}/export",
    ok=None,
    summary="All readings of a usage point as CSV or ESPI XML (streamed)",
)
def export_get(
    request: HttpRequest,
    usage_point_id: int,
    format: Literal["csv", "espi"] = "csv",
    start: datetime | date | None = None,
    end: datetime | date | None = None,
) -> Any:
    point = _point(usage_point_id)
    begin, finish = (None, None)
    if start is not None and end is not None:
        begin, finish = _range(start, end)
    elif start is not None or end is not None:
        raise Problem(422, "invalid-range", "give both start and end, or neither")
    if format == "csv":
        response = StreamingHttpResponse(
            exports.csv_stream(point=point, start=begin, end=finish),
            content_type="text/csv; charset=utf-8",
        )
        name = f"usage-point-{point.pk}.csv"
    else:
        response = StreamingHttpResponse(
            exports.espi_stream(point=point, start=begin, end=finish),
            content_type="application/atom+xml",
        )
        name = f"usage-point-{point.pk}.xml"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
