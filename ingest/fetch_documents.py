"""A downloaded document into the readings: the usage points the fetch may write, the import,
the ReadingTypes it lacked, the service kinds it told customers, the fetch row's INGESTED
outcome; and a data request's answer that carried the data (recorded as a fetch row)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from customers import usage_point_kinds
from gascap.pge.errors import PgeUrlRefused
from gascap.pge.safexml import XmlRejected
from ingest import readings
from ingest.claims import error_excerpt, row_fail, row_save
from ingest.fetch_calls import FetchFailed, fetch_get
from ingest.fetch_rows import url_sha256
from ingest.models import Fetch, FetchAttempt
from ingest.pge_resources import ResourceRefused, resource_parse, url_check
from ingest.readings import ImportResult
from ingest.usage_point_binding import (
    DocumentRefused,
    UsagePointBinding,
    bulk_binding,
    subscription_binding,
)

logger = logging.getLogger(__name__)


def _service_kinds_record(result: ImportResult) -> None:
    """Tell customers the service kind (electric/gas) of the usage points the import stored,
    per authorization: PG&E's Authorization resource does not say it, only the data's
    ServiceCategory does."""
    by_authorization: dict[int, dict[str, int]] = {}
    for stored in result.usage_points_stored:
        if stored.authorization_id is not None and stored.service_kind is not None:
            kinds = by_authorization.setdefault(stored.authorization_id, {})
            kinds[stored.usage_point_id] = stored.service_kind
    # All of a Bulk document's authorizations at once (500 of them: docs/scale.md).
    usage_point_kinds.subscription_usage_points_record_kinds_many(kinds=by_authorization)


def _binding(fetch: Fetch) -> UsagePointBinding:
    """What the document may write, from the fetch (docs/espi.md, "Which usage points a
    document may write"): its subscription's usage points, else (Bulk) ACTIVE ones only."""
    if fetch.subscription_id:
        return subscription_binding(subscription_id=fetch.subscription_id)
    return bulk_binding()


def document_ingest(  # type: ignore[no-untyped-def]
    fetch: Fetch, document, *, now: datetime
) -> tuple[int, ImportResult, list[str]]:
    """Import one answer into the readings (closing it), then fetch the ReadingTypes it lacked.
    The usage points it may write are those of the fetch's binding (`_binding`)."""
    size = document.size or 0
    try:
        if document.status not in (200, 204):
            # A 202 here would mean PG&E took the GET for a new request; other 2xx are not
            # documented for a data download either (docs/pge-protocol.md, "Data APIs").
            raise FetchFailed(
                "unexpected_status",
                f"PG&E answered {document.status} to a data download (expected 200 or 204)",
            )
        if document.status == 204 or not size:
            # Since 2023 PG&E answers 204 when the range holds no data.
            return size, ImportResult(), []
        with document.open() as source:
            result = readings.document_import(
                source=source, source_label=f"fetch {fetch.pk}", now=now, binding=_binding(fetch)
            )
    except DocumentRefused as refused:
        raise FetchFailed(refused.reason, str(refused), status=Fetch.Status.REFUSED) from None
    finally:
        document.close()
    _service_kinds_record(result)
    problems: list[str] = []
    for href in result.missing_reading_types:
        # A MeterReading without its ReadingType leaves units unknown: fetch it, never guess.
        try:
            url_check(href)
            if resource_parse(href).kind != "READING_TYPE":
                raise ResourceRefused("unsupported_resource", "the link is not a ReadingType")
        except (PgeUrlRefused, ResourceRefused) as exc:
            problems.append(f"ReadingType refused: {error_excerpt(exc)}")
            continue
        extra = fetch_get(fetch, url=href, now=now)
        try:
            with extra.open() as source:
                readings.reading_type_attach(href=href, source=source, now=now)
        finally:
            extra.close()
    return size, result, problems


def fetch_save_ingested(
    fetch: Fetch, *, size: int, result: ImportResult, problems: list[str], **extra: object
) -> None:
    """The row of a document imported whole: its byte count and what the import did."""
    row_save(
        fetch,
        status=Fetch.Status.INGESTED,
        finished_at=timezone.now(),
        bytes_received=size,
        readings_new=result.readings_new,
        readings_updated=result.readings_updated,
        readings_unchanged=result.readings_unchanged,
        readings_stale=result.readings_stale,
        usage_points_skipped=result.usage_points_skipped,
        reason="incomplete_units" if problems else "",
        error="\n".join(problems)[:2000],
        **extra,
    )


def fetch_record_answer(  # type: ignore[no-untyped-def]
    *, kind: str, subscription_id: str, answer, now: datetime, data_request_id: int | None = None
) -> Fetch:
    """Record a data request's answer that was not 202 (docs/pge-protocol.md, "Data APIs") as a
    fetch row: a 200 carrying the data is imported from the answer (no second GET), any other
    2xx is FAILED `unexpected_status`. The row names the request URL, which has no
    correlationID: replayed, it is skipped, never sent again (it would start a new request)."""
    document = answer.document
    fetch = Fetch.objects.create(
        url=answer.url,
        url_sha256=url_sha256(answer.url),
        kind=kind,
        subscription_id=subscription_id,
        data_request_id=data_request_id,
        status=Fetch.Status.RUNNING,
        attempts=1,
        created_at=now,
        started_at=now,
    )
    FetchAttempt.objects.create(
        fetch=fetch,
        url=answer.url,
        started_at=now,
        duration_ms=(document.elapsed * 1000) if document is not None else 0,
        status_code=answer.status,
        bytes_received=(document.size or 0) if document is not None else 0,
        outcome=FetchAttempt.Outcome.OK if document is not None else FetchAttempt.Outcome.PERMANENT,
        error_code="" if document is not None else "unexpected_status",
    )
    if document is None:
        row_fail(
            fetch,
            reason="unexpected_status",
            error=f"PG&E answered {answer.status} to an asynchronous request (expected 202): "
            "no notification will follow",
            with_traceback=False,
        )
        return fetch
    try:
        size, result, problems = document_ingest(fetch, document, now=now)
    except FetchFailed as failed:
        row_fail(
            fetch,
            reason=failed.reason,
            error=str(failed),
            status=failed.status,
            with_traceback=True,
        )
    except XmlRejected as exc:
        row_fail(fetch, reason="parse_rejected", error=error_excerpt(exc), with_traceback=True)
    except Exception as exc:  # recorded on the row: the answer cannot be fetched again
        logger.exception("fetch %s: importing a data request's answer failed", fetch.pk)
        reason = f"error_{type(exc).__name__}"[:64]
        row_fail(fetch, reason=reason, error=error_excerpt(exc), with_traceback=True)
    else:
        fetch_save_ingested(fetch, size=size, result=result, problems=problems)
    fetch.refresh_from_db()
    return fetch
