"""Data is bound to the subscription that fetched it (issue 10 §5, docs/reliability.md T3):
a document fetched with subscription A's token writes usage points under A only (else it is
refused whole), a Bulk document stores only subscriptions ACTIVE here, usage points belong to
their authorization (and through it to the customer, across a re-consent), and the gap audit
works on ACTIVE consents only. Documents are PG&E's real Share My Data samples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db.models import Sum

from customers.models import Authorization, Customer, SubscriptionUsagePoint
from ingest import fetch_rows, fetches, gap_audit
from ingest.models import Fetch, IntervalReading, ReadingRevision, UsagePoint, UsageSummary
from tests.builders import authorization_make, customer_make
from tests.conftest import FIXTURES
from tests.ingest.conftest import API_BASE, CLIENT_TOKEN, bulk_url, subscription_url

pytestmark = pytest.mark.django_db

FEED_TYPE = "application/atom+xml"
# The real samples' subscription and usage points.
SAMPLE_SID = "4095251"
ELECTRIC_UPID = "5391320451"
GAS_UPID = "7170720474"
ELECTRIC_1DAY = FIXTURES / "pge_smd_2019_electric_hourly_bulk_1day.xml"
GAS_BULK = FIXTURES / "pge_smd_2020_gas_daily_therm_bulk.xml"
ATTACKER_SID = "SUBTESTATTACKER"


def _consent(sid: str, *, status: str = Authorization.Status.ACTIVE, customer=None, name=None):
    # Named, not the consent callback's placeholder: a re-consent never rejoins it.
    return authorization_make(
        subscription_id=sid,
        status=status,
        customer=customer or customer_make(display_name=name or f"Test {sid}"),
        access_token=f"cust-access-TEST-{sid}-aaaa",
        refresh_token=f"cust-refresh-TEST-{sid}-bbbb",
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )


def _run(url: str, *, kind: str, sid: str, now, capture) -> Fetch:
    fetch, _ = fetch_rows.fetch_open_or_create(url=url, kind=kind, subscription_id=sid, now=now)
    with capture(execute=True):
        fetches.fetch_run(fetch_id=fetch.pk, now=now)
    fetch.refresh_from_db()
    return fetch


def _snapshot() -> tuple[int, int, int, int]:
    return (
        IntervalReading.objects.count(),
        IntervalReading.objects.aggregate(total=Sum("value"))["total"] or 0,
        UsagePoint.objects.count(),
        ReadingRevision.objects.count(),
    )


@pytest.fixture
def victim(client_token, pge, now, django_capture_on_commit_callbacks):
    """Subscription B (the samples' 4095251) with its real day of hourly data stored."""
    auth = _consent(SAMPLE_SID, name="Test Victim B")
    pge.get(bulk_url(), body=ELECTRIC_1DAY.read_bytes(), content_type=FEED_TYPE)
    fetch = _run(
        bulk_url(),
        kind=Fetch.Kind.BULK,
        sid="",
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert fetch.status == Fetch.Status.INGESTED, fetch.error
    assert fetch.readings_new == 24
    return auth


def test_a_document_writing_another_subscriptions_usage_point_is_refused_whole(
    now, pge, victim, django_capture_on_commit_callbacks
):
    """A's token fetched a document whose usage point is B's: nothing of it is stored."""
    _consent(ATTACKER_SID)
    before = _snapshot()
    # The real B document with every value changed, served for A's subscription URL.
    planted = ELECTRIC_1DAY.read_bytes().replace(b"<ns0:value>", b"<ns0:value>9")
    pge.get(subscription_url(ATTACKER_SID), body=planted, content_type=FEED_TYPE)
    fetch = _run(
        subscription_url(ATTACKER_SID),
        kind=Fetch.Kind.SUBSCRIPTION,
        sid=ATTACKER_SID,
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert (fetch.status, fetch.reason) == (Fetch.Status.REFUSED, "foreign_usage_point")
    assert SAMPLE_SID in fetch.error
    assert _snapshot() == before
    assert not UsagePoint.objects.filter(authorization__subscription_id=ATTACKER_SID).exists()
    assert not SubscriptionUsagePoint.objects.filter(
        authorization__subscription_id=ATTACKER_SID
    ).exists()


def test_a_planted_usage_point_cannot_make_the_gap_audit_end_a_consent(
    now, pge, victim, django_capture_on_commit_callbacks
):
    """The attack of issue 10 §5: A's document names a made-up usage point under B. Before,
    it was stored under B and the gap audit fetched it with B's token (a 403 from PG&E would
    end B's consent). Now the document is refused and the audit asks nothing for B."""
    _consent(ATTACKER_SID)
    planted = ELECTRIC_1DAY.read_bytes().replace(ELECTRIC_UPID.encode(), b"9999999999")
    pge.get(subscription_url(ATTACKER_SID), body=planted, content_type=FEED_TYPE)
    fetch = _run(
        subscription_url(ATTACKER_SID),
        kind=Fetch.Kind.SUBSCRIPTION,
        sid=ATTACKER_SID,
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert fetch.reason == "foreign_usage_point"
    assert not UsagePoint.objects.filter(usage_point_id="9999999999").exists()
    audit_now = datetime(2019, 10, 20, 12, tzinfo=UTC)
    created = gap_audit.gap_audit(now=audit_now, days=3)
    assert all("9999999999" not in f.url for f in created)


def test_a_subscription_document_stores_its_own_usage_points_bound_to_it(
    now, pge, client_token, django_capture_on_commit_callbacks
):
    auth = _consent(SAMPLE_SID)
    pge.get(subscription_url(SAMPLE_SID), body=GAS_BULK.read_bytes(), content_type=FEED_TYPE)
    fetch = _run(
        subscription_url(SAMPLE_SID),
        kind=Fetch.Kind.SUBSCRIPTION,
        sid=SAMPLE_SID,
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert fetch.status == Fetch.Status.INGESTED, fetch.error
    usage_point = UsagePoint.objects.get()
    assert (usage_point.authorization_id, usage_point.usage_point_id) == (auth.pk, GAS_UPID)
    assert usage_point.authorization.customer == auth.customer
    # The kind comes from the import's own result, for this authorization.
    assert SubscriptionUsagePoint.objects.get(authorization=auth).service_kind == "gas"


@pytest.mark.parametrize(
    "status", [None, Authorization.Status.REVOKED, Authorization.Status.NEEDS_RECONSENT]
)
def test_bulk_skips_usage_points_of_subscriptions_not_active_here(
    now, pge, client_token, django_capture_on_commit_callbacks, status
):
    if status is not None:
        _consent(SAMPLE_SID, status=status)
    pge.get(bulk_url(), body=GAS_BULK.read_bytes(), content_type=FEED_TYPE)
    fetch = _run(
        bulk_url(),
        kind=Fetch.Kind.BULK,
        sid="",
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert fetch.status == Fetch.Status.INGESTED, fetch.error
    assert fetch.usage_points_skipped == 1
    assert fetch.readings_new == 0
    assert (UsagePoint.objects.count(), IntervalReading.objects.count()) == (0, 0)
    assert UsageSummary.objects.count() == 0
    assert not SubscriptionUsagePoint.objects.exists()


def test_bulk_stores_active_subscriptions_with_their_kinds(
    now, pge, client_token, django_capture_on_commit_callbacks
):
    auth = _consent(SAMPLE_SID)
    pge.get(bulk_url(), body=GAS_BULK.read_bytes(), content_type=FEED_TYPE)
    fetch = _run(
        bulk_url(),
        kind=Fetch.Kind.BULK,
        sid="",
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert (fetch.status, fetch.usage_points_skipped, fetch.readings_new) == (
        Fetch.Status.INGESTED,
        0,
        1,
    )
    assert UsagePoint.objects.get().authorization == auth
    assert SubscriptionUsagePoint.objects.get(authorization=auth).service_kind == "gas"
    assert pge.calls[0].request.headers["Authorization"] == f"Bearer {CLIENT_TOKEN}"


def test_gap_audit_works_only_on_active_consents(now, pge, victim):
    """The victim's day 2019-10-03 is stored; the audit of 10-02..10-04 finds two missing
    days while the consent is ACTIVE, and asks nothing once it is not."""
    audit_now = datetime(2019, 10, 6, 19, tzinfo=UTC)  # audits Pacific 10-02 .. 10-04
    created = gap_audit.gap_audit(now=audit_now, days=3)
    assert created
    assert all(
        f"Batch/Subscription/{SAMPLE_SID}/UsagePoint/{ELECTRIC_UPID}?" in f.url for f in created
    )
    Fetch.objects.filter(pk__in=[f.pk for f in created]).update(status=Fetch.Status.INGESTED)
    victim.status = Authorization.Status.NEEDS_RECONSENT
    victim.save()
    assert gap_audit.gap_audit(now=audit_now, days=3) == []


def test_an_unbound_file_is_never_audited(now):
    """An operator's file (import_espi: no fetch, no binding) names a subscription in its
    hrefs; the audit does not spend anyone's token on it."""
    from ingest.readings import document_import

    _consent(SAMPLE_SID)
    document_import(source=str(ELECTRIC_1DAY), source_label="operator file", now=now)
    assert UsagePoint.objects.get().authorization is None
    assert gap_audit.gap_audit(now=datetime(2019, 10, 6, 19, tzinfo=UTC), days=3) == []


def test_a_re_consent_keeps_the_customers_history(
    now, pge, victim, django_capture_on_commit_callbacks
):
    """PG&E issues a new subscription id on re-consent; the callback made a placeholder
    customer for it. The first data for the same usage point joins the old customer."""
    customer = victim.customer
    SubscriptionUsagePoint.objects.get_or_create(authorization=victim, usage_point_id=ELECTRIC_UPID)
    victim.status = Authorization.Status.REVOKED
    victim.save()
    new_sid = "4095999"
    placeholder = Customer.objects.create(display_name=f"Subscription {new_sid}")
    renewed = _consent(new_sid, customer=placeholder)
    document = ELECTRIC_1DAY.read_bytes().replace(SAMPLE_SID.encode(), new_sid.encode())
    pge.get(subscription_url(new_sid), body=document, content_type=FEED_TYPE)
    fetch = _run(
        subscription_url(new_sid),
        kind=Fetch.Kind.SUBSCRIPTION,
        sid=new_sid,
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    assert fetch.status == Fetch.Status.INGESTED, fetch.error
    renewed.refresh_from_db()
    assert renewed.customer == customer
    assert not Customer.objects.filter(pk=placeholder.pk).exists()
    # Both consents' usage points (old history, new data) are the one customer's.
    hrefs = set(
        UsagePoint.objects.filter(authorization__customer=customer).values_list("href", flat=True)
    )
    assert hrefs == {
        f"{API_BASE}Subscription/{SAMPLE_SID}/UsagePoint/{ELECTRIC_UPID}",
        f"{API_BASE}Subscription/{new_sid}/UsagePoint/{ELECTRIC_UPID}",
    }
    # The gap audit follows the ACTIVE consent only.
    created = gap_audit.gap_audit(now=datetime(2019, 10, 6, 19, tzinfo=UTC), days=3)
    assert created and all(f"Batch/Subscription/{new_sid}/" in f.url for f in created)


def test_a_named_customer_is_not_merged_away(now, pge, victim, django_capture_on_commit_callbacks):
    """Only the callback's placeholder is replaced: a customer an operator named (or invited
    to consent) keeps its new consent."""
    SubscriptionUsagePoint.objects.get_or_create(authorization=victim, usage_point_id=ELECTRIC_UPID)
    victim.status = Authorization.Status.REVOKED
    victim.save()
    named = Customer.objects.create(display_name="Someone Else", email="else@example.test")
    renewed = _consent("4095998", customer=named)
    document = ELECTRIC_1DAY.read_bytes().replace(SAMPLE_SID.encode(), b"4095998")
    pge.get(subscription_url("4095998"), body=document, content_type=FEED_TYPE)
    _run(
        subscription_url("4095998"),
        kind=Fetch.Kind.SUBSCRIPTION,
        sid="4095998",
        now=now,
        capture=django_capture_on_commit_callbacks,
    )
    renewed.refresh_from_db()
    assert renewed.customer == named
