"""The service kinds an import records for a Bulk document's authorizations, all at once
(`subscription_usage_points_record_kinds_many`, issue 15): the rows are the same as one call
per authorization gives, the statements do not grow with the authorizations, and a
re-consent among them still joins its earlier customer."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Authorization, Customer, SubscriptionUsagePoint
from customers.usage_point_kinds import subscription_usage_points_record_kinds_many
from tests.builders import authorization_make, customer_make

pytestmark = pytest.mark.django_db

ELECTRIC, GAS = 0, 1


def placeholders(count: int, *, first: int = 0) -> list[Authorization]:
    """ACTIVE consents as the consent callback leaves them (a placeholder customer each)."""
    made = []
    for n in range(first, first + count):
        sid = f"SUBKIND{n:04d}"
        made.append(authorization_make(subscription_id=sid))  # its own customer, ACTIVE
    return made


def kinds_of(authorizations: list[Authorization]) -> dict[int, dict[str, int]]:
    return {
        a.pk: {f"UP{a.pk}E": ELECTRIC, **({f"UP{a.pk}G": GAS} if a.pk % 2 else {})}
        for a in authorizations
    }


def recorded(kinds: dict[int, dict[str, int]]) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        changed = subscription_usage_points_record_kinds_many(kinds=kinds)
    return changed, len(queries.captured_queries)


def test_rows_for_every_authorization_in_a_bounded_number_of_statements():
    few, many = placeholders(3), placeholders(40, first=100)
    few_changed, few_statements = recorded(kinds_of(few))
    many_changed, many_statements = recorded(kinds_of(many))
    assert few_changed == sum(len(k) for k in kinds_of(few).values())
    assert many_changed == sum(len(k) for k in kinds_of(many).values())
    assert many_statements == few_statements
    assert set(
        SubscriptionUsagePoint.objects.values_list(
            "authorization_id", "usage_point_id", "service_kind"
        )
    ) == {
        (pk, point, "electric" if code == ELECTRIC else "gas")
        for pk, points in {**kinds_of(few), **kinds_of(many)}.items()
        for point, code in points.items()
    }
    # Again: nothing changes; a corrected kind is one update.
    assert recorded(kinds_of(many))[0] == 0
    corrected = kinds_of(many)
    corrected[many[0].pk][f"UP{many[0].pk}E"] = GAS
    assert recorded(corrected)[0] == 1
    assert (
        SubscriptionUsagePoint.objects.get(usage_point_id=f"UP{many[0].pk}E").service_kind == "gas"
    )


def test_a_re_consent_among_many_joins_its_earlier_customer_and_only_it():
    earlier_customer = customer_make(display_name="Ada Lovelace")
    earlier = authorization_make(
        customer=earlier_customer, status=Authorization.Status.REVOKED, subscription_id="SUBOLD"
    )
    SubscriptionUsagePoint.objects.create(authorization=earlier, usage_point_id="UPSHARED")
    consents = placeholders(5)
    renewed = consents[2]
    placeholder = renewed.customer
    kinds = kinds_of(consents)
    kinds[renewed.pk] = {"UPSHARED": ELECTRIC}
    subscription_usage_points_record_kinds_many(kinds=kinds)
    renewed.refresh_from_db()
    assert renewed.customer == earlier_customer
    assert not Customer.objects.filter(pk=placeholder.pk).exists()
    for other in consents[:2] + consents[3:]:
        other.refresh_from_db()
        assert other.customer.display_name == f"Subscription {other.subscription_id}"
