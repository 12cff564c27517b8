"""Pipeline stage 3, import: what a fetched document stores — a hostile document refused
without retry, a missing ReadingType fetched with the same token, replays that write
nothing, one transaction per document (docs/reliability.md tests 17, 42, 45)."""

from __future__ import annotations

import pytest

from ingest.models import Fetch, IntervalReading, ReadingRevision
from tests.ingest.conftest import (
    CUSTOMER_ACCESS,
    READING_TYPE_HREF,
    espi_feed,
    reading_type_feed,
    subscription_url,
)
from tests.ingest.pipeline_steps import (
    FEED_TYPE,
    bearer,
    readings_checksum,
    run,
    subscription_fetch,
)

pytestmark = pytest.mark.django_db


def test_hostile_document_is_rejected_without_retry(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>&a;</id></feed>'
    )
    pge.get(subscription_url(), body=hostile, content_type=FEED_TYPE)
    result = run(subscription_fetch(now), now, django_capture_on_commit_callbacks)
    assert (result.status, result.reason) == (Fetch.Status.FAILED, "parse_rejected")
    assert IntervalReading.objects.count() == 0


def test_missing_reading_type_is_fetched_with_the_same_token(
    now, pge, authorization, django_capture_on_commit_callbacks
):
    pge.get(
        subscription_url(),
        body=espi_feed(with_reading_type=False),
        content_type=FEED_TYPE,
        match=[bearer(CUSTOMER_ACCESS)],
    )
    pge.get(
        READING_TYPE_HREF,
        body=reading_type_feed(),
        content_type=FEED_TYPE,
        match=[bearer(CUSTOMER_ACCESS)],
    )
    fetch = subscription_fetch(now)
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    from ingest.models import MeterReading

    series = MeterReading.objects.get()
    assert series.reading_type is not None
    assert series.reading_type.uom == 72
    assert fetch.attempt_rows.count() == 2


def test_replays_write_nothing(now, pge, authorization, django_capture_on_commit_callbacks):
    from ingest.replay import fetches_replay

    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    fetch = subscription_fetch(now)
    run(fetch, now, django_capture_on_commit_callbacks)
    before = readings_checksum()
    for _ in range(2):
        assert fetches_replay(fetch_ids=[fetch.pk]) == 1
        run(fetch, now, django_capture_on_commit_callbacks)
        fetch.refresh_from_db()
        assert fetch.status == Fetch.Status.INGESTED
        assert (fetch.readings_new, fetch.readings_updated) == (0, 0)
        assert fetch.readings_unchanged == 24
    assert readings_checksum() == before
    assert ReadingRevision.objects.count() == 0


def test_failure_mid_document_stores_nothing_then_retry_stores_all(
    now, pge, authorization, monkeypatch, django_capture_on_commit_callbacks
):
    """docs/reliability.md test 45: one transaction per document."""
    import ingest.readings as readings

    pge.get(subscription_url(), body=espi_feed(), content_type=FEED_TYPE)
    real = readings.document_import

    def crash(**kwargs):  # type: ignore[no-untyped-def]
        from django.db import transaction

        with transaction.atomic():
            real(**kwargs)
            raise RuntimeError("injected failure after the rows were written")

    monkeypatch.setattr(readings, "document_import", crash)
    fetch = subscription_fetch(now)
    result = run(fetch, now, django_capture_on_commit_callbacks)
    assert result.status == Fetch.Status.FAILED
    assert IntervalReading.objects.count() == 0
    fetch.refresh_from_db()
    assert "RuntimeError" in fetch.traceback
    monkeypatch.setattr(readings, "document_import", real)
    from ingest.replay import fetches_replay

    fetches_replay(fetch_ids=[fetch.pk])
    assert run(fetch, now, django_capture_on_commit_callbacks).status == Fetch.Status.INGESTED
    assert IntervalReading.objects.count() == 24
