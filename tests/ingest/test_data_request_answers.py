"""Asynchronous data requests succeed on exactly 202 (docs/pge-protocol.md, "Data APIs"): a 200
carrying a document is that data and is imported at once, any other 2xx is recorded as
unexpected (a fetch row the operator sees) — never taken for an accepted request (issue 10,
part 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingest import data_requests
from ingest.models import Fetch, FetchAttempt, IntervalReading
from tests.ingest.conftest import API_BASE, SID, espi_feed, subscription_url

pytestmark = pytest.mark.django_db

FEED_TYPE = "application/atom+xml"


def _ask(authorization, now):
    return data_requests.subscription_data_request(
        authorization_id=authorization.pk, now=now, start=now - timedelta(days=2), end=now
    )


def test_202_is_an_accepted_request_and_records_nothing(now, pge, authorization):
    pge.get(subscription_url(correlation=None), status=202)
    report = _ask(authorization, now)
    assert report.statuses == [202]
    assert Fetch.objects.count() == 0


def test_200_with_a_document_is_imported_at_once(now, pge, authorization):
    pge.get(subscription_url(correlation=None), body=espi_feed(), content_type=FEED_TYPE)
    report = _ask(authorization, now)
    assert report.statuses == [200]
    fetch = Fetch.objects.get()
    assert (fetch.kind, fetch.subscription_id, fetch.status) == (
        Fetch.Kind.SUBSCRIPTION,
        SID,
        Fetch.Status.INGESTED,
    )
    assert fetch.url.startswith(subscription_url(correlation=None) + "?published-min=")
    assert fetch.readings_new == 24 == IntervalReading.objects.count()
    attempt = FetchAttempt.objects.get()
    assert (attempt.status_code, attempt.outcome) == (200, FetchAttempt.Outcome.OK)
    assert len(pge.calls) == 1  # imported from the answer: no second GET


@pytest.mark.parametrize("status", [200, 201, 204, 206])
def test_other_2xx_are_recorded_as_unexpected(now, pge, authorization, status):
    pge.get(subscription_url(correlation=None), status=status, body=b"")
    report = _ask(authorization, now)
    assert report.statuses == [status]
    fetch = Fetch.objects.get()
    assert (fetch.status, fetch.reason) == (Fetch.Status.FAILED, "unexpected_status")
    assert str(status) in fetch.error
    assert fetch.attempt_rows.get().status_code == status
    assert IntervalReading.objects.count() == 0


def test_bulk_request_answers_are_sorted_the_same_way(now, pge, client_token, authorization):
    pge.get(f"{API_BASE}Batch/Bulk/99999", status=204)
    assert data_requests.bulk_data_request(now=now) == 204
    fetch = Fetch.objects.get()
    assert (fetch.kind, fetch.status, fetch.reason) == (
        Fetch.Kind.BULK,
        Fetch.Status.FAILED,
        "unexpected_status",
    )


def test_a_recorded_request_replayed_never_asks_pge_again(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    """The row names the request URL (no correlationID): replaying it would start a new request,
    so the fetch machinery skips it."""
    from ingest import fetches
    from ingest.replay import fetches_replay

    pge.get(subscription_url(correlation=None), status=201)
    _ask(authorization, now)
    fetch = Fetch.objects.get()
    fetches_replay(fetch_ids=[fetch.pk])
    with django_capture_on_commit_callbacks(execute=True):
        result = fetches.fetch_run(fetch_id=fetch.pk, now=now)
    assert (result.status, result.reason) == (Fetch.Status.SKIPPED, "no_correlation")
    assert len(pge.calls) == 1
