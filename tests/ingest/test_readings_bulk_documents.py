"""A Bulk document's usage points and series are stored set-based (issue 15): importing one
costs the same number of statements for 4 customers as for 40, first time and again, and
every usage point still belongs to the authorization the binding gives it. The documents are
the sandbox's scale-mode Bulk feeds (sandbox/scale.py), PG&E-shaped like its samples."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Authorization
from ingest.models import IntervalReading, MeterReading, UsagePoint
from ingest.readings import DocumentRefused, document_import
from ingest.usage_point_binding import UsagePointBinding, bulk_binding
from sandbox import scale
from tests.builders import authorization_make, customer_make, scale_bulk_document_make

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
DAYS = [date(2026, 3, 3)]


def readings_of(first: int, end: int) -> int:
    """What the sandbox generates for customers [first, end) on DAYS."""
    return (
        scale.scale_expected(count=end, days=DAYS, today=TODAY)[0]
        - scale.scale_expected(count=first, days=DAYS, today=TODAY)[0]
    )


@pytest.fixture(autouse=True)
def published(settings):
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder). The
    whole document merges after its parse (the default): chunks merged during it (PostgreSQL,
    GASCAP_INGEST_CHUNK_ROWS) add statements per chunk, tests/ingest/test_readings_overlap.py."""
    settings.GASCAP_INGEST_CHUNK_ROWS = 0


def bulk_document(first: int, end: int) -> bytes:
    return scale_bulk_document_make(first=first, end=end, days=DAYS, today=TODAY)


def consents(first: int, end: int) -> dict[str, int]:
    """ACTIVE authorizations for customers [first, end): subscription id -> authorization id."""
    active = {}
    for customer in scale.scale_customers(first, end):
        auth = authorization_make(
            customer=customer_make(display_name=customer.name),
            status=Authorization.Status.ACTIVE,
            subscription_id=customer.subscription_id,
        )
        active[customer.subscription_id] = auth.pk
    return active


def statements(data: bytes, binding: UsagePointBinding) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        result = document_import(
            source=io.BytesIO(data), source_label="test:bulk", now=NOW, binding=binding
        )
    # The readings' own load (SQLite: an executemany per 2,000 rows) grows with the readings,
    # as it should; the statements around it must not grow with the usage points.
    return sum(1 for q in queries.captured_queries if "INTO espi_load" not in q["sql"]), result


def test_statements_per_document_do_not_grow_with_its_usage_points():
    small_first, small_end, large_first, large_end = 0, 4, 100, 140
    consents(small_first, small_end)
    large_consents = consents(large_first, large_end)
    bindings = {"small": bulk_binding(), "large": bulk_binding()}
    small = bulk_document(small_first, small_end)
    large = bulk_document(large_first, large_end)
    # The document's two ReadingTypes are stored by an earlier one (a handful of statements
    # per document, not per usage point: not what this test compares).
    document_import(source=io.BytesIO(bulk_document(200, 202)), source_label="warm", now=NOW)

    small_first_import, result = statements(small, bindings["small"])
    assert (result.usage_points, result.series, result.readings_new) == (6, 6, readings_of(0, 4))
    large_first_import, result = statements(large, bindings["large"])
    assert (result.usage_points, result.series) == (60, 60)
    assert result.readings_new == readings_of(100, 140)
    # Before issue 15 each usage point and each series was its own get_or_create (two or
    # three statements each): 54 usage points and series more would be 100+ statements more.
    assert large_first_import == small_first_import

    small_again, result = statements(small, bindings["small"])
    assert result.readings_unchanged == readings_of(0, 4) and result.readings_new == 0
    large_again, result = statements(large, bindings["large"])
    assert result.readings_unchanged == readings_of(100, 140) and result.readings_new == 0
    assert large_again == small_again <= small_first_import

    # Every usage point is bound to its own subscription's authorization, stored once.
    for sid, authorization_id in large_consents.items():
        customer = scale.scale_customer_by_subscription(sid, count=large_end)
        assert customer is not None
        stored = UsagePoint.objects.filter(authorization_id=authorization_id)
        assert sorted(stored.values_list("usage_point_id", flat=True)) == sorted(
            up.usage_point_id for up in customer.usage_points
        )
    assert UsagePoint.objects.count() == 66 + 3 and MeterReading.objects.count() == 66 + 3
    assert IntervalReading.objects.count() == (
        readings_of(0, 4) + readings_of(100, 140) + readings_of(200, 202)
    )


def test_a_usage_point_stored_under_another_authorization_refuses_the_document():
    """The set-based store keeps the binding rule: a stored usage point bound elsewhere
    refuses the whole document, nothing of it stored (tests/ingest/test_data_binding.py
    covers the fetch paths with PG&E's samples)."""
    active = consents(0, 3)
    data = bulk_document(0, 3)
    document_import(
        source=io.BytesIO(data),
        source_label="first",
        now=NOW,
        binding=UsagePointBinding(subscription_id=None, _looked_up=active),
    )
    before = (UsagePoint.objects.count(), IntervalReading.objects.count())
    moved = dict(active)
    victim = scale.scale_customer(1).subscription_id
    moved[victim] = authorization_make(
        customer=customer_make(display_name="Someone else"),
        status=Authorization.Status.ACTIVE,
        subscription_id="8999999999",
    ).pk
    changed = data.replace(b"<ns0:value>", b"<ns0:value>7")
    with pytest.raises(DocumentRefused) as refused:
        document_import(
            source=io.BytesIO(changed),
            source_label="second",
            now=NOW,
            binding=UsagePointBinding(subscription_id=None, _looked_up=moved),
        )
    assert refused.value.reason == "foreign_usage_point"
    assert (UsagePoint.objects.count(), IntervalReading.objects.count()) == before
    assert not IntervalReading.objects.filter(value__gte=7_000_000_000).exists()


def test_a_document_changing_a_usage_points_fields_updates_them_once():
    """Stored rows the document describes differently (here: unbound rows a bound import
    claims) are updated in one statement, and a re-import changes nothing."""
    data = bulk_document(0, 3)
    document_import(source=io.BytesIO(data), source_label="operator file", now=NOW)
    assert set(UsagePoint.objects.values_list("authorization_id", flat=True)) == {None}
    active = consents(0, 3)
    later = datetime(2026, 3, 11, tzinfo=UTC)
    binding = UsagePointBinding(subscription_id=None, _looked_up=active)
    document_import(source=io.BytesIO(data), source_label="bulk", now=later, binding=binding)
    assert set(UsagePoint.objects.values_list("authorization_id", flat=True)) == set(
        active.values()
    )
    assert set(UsagePoint.objects.values_list("updated_at", flat=True)) == {later}
    document_import(
        source=io.BytesIO(data),
        source_label="bulk again",
        now=datetime(2026, 3, 12, tzinfo=UTC),
        binding=binding,
    )
    assert set(UsagePoint.objects.values_list("updated_at", flat=True)) == {later}


def test_a_bulk_document_looks_up_only_the_subscriptions_it_names(monkeypatch):
    """Reading every ACTIVE consent per Bulk document made each of 200 documents read 100,000
    rows at 100,000 customers (make bench-pipeline SIZE=100000): the lookup is the document's."""
    from ingest import usage_point_binding

    named = consents(0, 4)
    others = consents(300, 340)  # ACTIVE, not in the document
    asked: list[set[str]] = []
    real = usage_point_binding.active_subscriptions

    def recording(*, subscription_ids):  # type: ignore[no-untyped-def]
        asked.append(set(subscription_ids))
        return real(subscription_ids=subscription_ids)

    monkeypatch.setattr(usage_point_binding, "active_subscriptions", recording)
    result = document_import(
        source=io.BytesIO(bulk_document(0, 4)), source_label="t", now=NOW, binding=bulk_binding()
    )
    assert result.usage_points == 6 and result.readings_new == readings_of(0, 4)
    assert len(asked) == 1  # one lookup for the document, not one per usage point
    assert asked[0] == set(named)
    assert not asked[0] & set(others)
