"""Retention after revocation (`GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS`; unset: keep).

A customer none of whose consents is still usable (every one REVOKED, EXPIRED or never
completed) and whose last revocation is older than the retention period loses its readings,
revisions, rollups and bills: the usage points its consents named are deleted. The customer
and its consent rows stay (who consented, when, and that the data is gone), with
`data_purged_at` set, which the app API shows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q

from customers.models import Authorization, Customer, SubscriptionUsagePoint
from ingest.models import MeterReading, UsagePoint

logger = logging.getLogger(__name__)

STILL_USED = (
    Authorization.Status.ACTIVE,
    Authorization.Status.PENDING,
    Authorization.Status.NEEDS_RECONSENT,
)


def retention_days() -> int | None:
    value = settings.GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS
    return None if value is None else int(value)


def purge_after(customer: Customer) -> datetime | None:
    """When the customer's data will be deleted (None: kept, a consent still stands)."""
    days = retention_days()
    if days is None or customer.authorizations.filter(status__in=STILL_USED).exists():
        return None
    last = customer.authorizations.aggregate(last=Max("revoked_at"))["last"]
    return None if last is None else last + timedelta(days=days)


def customer_usage_points(customer: Customer) -> list[UsagePoint]:
    """Bound to the customer's consents, or (operator imports, unbound) named by them."""
    query = Q(pk__in=[])
    for subscription_id, usage_point_id in SubscriptionUsagePoint.objects.filter(
        authorization__customer=customer, authorization__subscription_id__isnull=False
    ).values_list("authorization__subscription_id", "usage_point_id"):
        suffix = f"/Subscription/{subscription_id}/UsagePoint/{usage_point_id}"
        query |= Q(href__endswith=suffix) | Q(href__endswith=suffix + "/")
    unbound = Q(authorization__isnull=True) & query
    return list(UsagePoint.objects.filter(Q(authorization__customer=customer) | unbound))


def customer_data_purge(*, customer: Customer, now: datetime) -> int:
    """Delete the customer's readings, revisions, rollups and bills; returns readings deleted."""
    deleted = 0
    with transaction.atomic():
        points = customer_usage_points(customer)
        series = list(
            MeterReading.objects.filter(usage_point__in=points).values_list("pk", flat=True)
        )
        if series:
            marks = ",".join(["%s"] * len(series))
            with connection.cursor() as cursor:
                # Readings carry no database foreign key (ingest.models.readings): delete them
                # in one statement, then let the ORM cascade the small tables.
                cursor.execute(
                    f"DELETE FROM ingest_intervalreading WHERE meter_reading_id IN ({marks})",  # noqa: S608
                    series,
                )
                deleted = cursor.rowcount
        UsagePoint.objects.filter(pk__in=[p.pk for p in points]).delete()
        Customer.objects.filter(pk=customer.pk).update(data_purged_at=now)
        customer.data_purged_at = now
    logger.warning(
        "Retention: deleted %s readings of customer %s (%s usage points)",
        deleted,
        customer.pk,
        len(points),
    )
    return deleted


def customer_data_retention_purge(*, now: datetime) -> dict[str, int]:
    """The daily job: purge every customer past its retention period."""
    days = retention_days()
    report = {"customers": 0, "readings": 0}
    if days is None:
        return report
    cutoff = now - timedelta(days=days)
    candidates = (
        Customer.objects.filter(data_purged_at__isnull=True, authorizations__revoked_at__lt=cutoff)
        .exclude(authorizations__status__in=STILL_USED)
        .distinct()
    )
    for customer in candidates:
        when = purge_after(customer)
        if when is not None and when <= now:
            report["readings"] += customer_data_purge(customer=customer, now=now)
            report["customers"] += 1
    return report
