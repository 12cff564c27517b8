"""Reads of the app API: which customer and usage points a request may see, and how they are
described (consents, usage points with coverage, bills).

Visibility: the app sees the customers that carry its `external_id` (consent sessions) and
the usage points of their consents; any other id answers 404 (`ResourceNotFound`), the same
answer as an id that does not exist, so ids of other customers cannot be probed.

A consent's usage points are ingest's UsagePoints bound to it (`UsagePoint.authorization`, set
by the fetch that stored them: docs/espi.md). A usage point an operator imported from a file
has no binding; it belongs to the consent whose recorded usage points name its self href's
`/Subscription/{SID}/UsagePoint/{UPID}` (docs/pge-protocol.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet

from customers.models import Authorization, Customer, SubscriptionUsagePoint
from customers.scope import scope_describe
from gascap.pge.espi.codes import (
    COMMODITIES,
    CURRENCIES,
    FLOW_DIRECTIONS,
    QUALITIES,
    SERVICE_KINDS,
    uom_label,
)
from ingest.data_retention import purge_after
from ingest.models import MeterReading, UsagePoint, UsageSummary

COST_EXPONENT = -5  # ESPI money: 10^-5 currency units (docs/espi-model.md §6)


class ResourceNotFound(LookupError):
    """No such resource for this app (absent, or another customer's)."""


def decimal_text(value: int | None, exponent: int) -> str | None:
    """The exact decimal `value` x 10^exponent as a string (no float on the way)."""
    if value is None:
        return None
    return format(Decimal(value).scaleb(exponent), "f")


WH, THERM = 72, 169  # ESPI uom codes (docs/espi-model.md §4)


def value_unit(uom: int | None, multiplier: int | None) -> tuple[str, int]:
    """The unit the API states values in and the power of ten that turns a raw value into it:
    energy in kWh (PG&E sends Wh x 10^multiplier), gas in therms, anything else as sent."""
    exponent = multiplier or 0
    if uom == WH:
        return "kWh", exponent - 3
    return uom_label(uom), exponent


def code_label(table: dict[int, str], code: int | None) -> str:
    """The word for an ESPI code; an unknown code (the enumerations are open) as its number."""
    return "" if code is None else table.get(code, str(code))


def quality_words(code: int | None) -> str | None:
    return None if code is None else QUALITIES.get(code, f"code {code}")


def customer_get(*, external_id: str) -> Customer:
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None or not external_id:
        raise ResourceNotFound("customer")
    return customer


def _usage_point_filter(links: list[tuple[str, str]]) -> Q:
    query = Q(pk__in=[])
    for subscription_id, usage_point_id in links:
        suffix = f"/Subscription/{subscription_id}/UsagePoint/{usage_point_id}"
        query |= Q(href__endswith=suffix) | Q(href__endswith=suffix + "/")
    return query


def customer_usage_points(*, customer: Customer) -> QuerySet[UsagePoint]:
    links = list(
        SubscriptionUsagePoint.objects.filter(
            authorization__customer=customer, authorization__subscription_id__isnull=False
        ).values_list("authorization__subscription_id", "usage_point_id")
    )
    unbound = Q(authorization__isnull=True) & _usage_point_filter(links)
    return UsagePoint.objects.filter(Q(authorization__customer=customer) | unbound).order_by("pk")


def usage_point_get(*, usage_point_pk: int) -> UsagePoint:
    """A usage point of one of the app's customers (else ResourceNotFound)."""
    point = (
        UsagePoint.objects.filter(pk=usage_point_pk)
        .select_related("authorization__customer")
        .first()
    )
    if point is None:
        raise ResourceNotFound("usage point")
    if point.authorization is not None:
        if point.authorization.customer.external_id is None:
            raise ResourceNotFound("usage point")
        return point
    href = point.href.rstrip("/")
    parts = href.split("/")
    try:
        at = len(parts) - 1 - parts[::-1].index("UsagePoint")
        subscription_id = parts[at - 1] if parts[at - 2] == "Subscription" else None
    except (ValueError, IndexError):
        subscription_id = None
    if subscription_id is None:
        raise ResourceNotFound("usage point")
    owned = SubscriptionUsagePoint.objects.filter(
        authorization__subscription_id=subscription_id,
        usage_point_id=parts[-1],
        authorization__customer__external_id__isnull=False,
    ).exists()
    if not owned:
        raise ResourceNotFound("usage point")
    return point


def usage_point_series(*, point: UsagePoint, flow: str | None = None) -> list[MeterReading]:
    series = list(
        MeterReading.objects.filter(usage_point=point).select_related("reading_type").order_by("pk")
    )
    if flow:
        series = [s for s in series if series_flow(s) == flow]
    return series


def series_flow(series: MeterReading) -> str:
    rt = series.reading_type
    if rt is None:
        return "unknown"
    return (
        code_label(FLOW_DIRECTIONS, rt.flow_direction)
        if rt.flow_direction is not None
        else ("delivered")
    )


def series_describe(series: MeterReading) -> dict[str, Any]:
    rt = series.reading_type
    unit, exponent = value_unit(rt.uom, rt.multiplier) if rt is not None else (None, 0)
    return {
        "id": series.pk,
        "meter_reading_id": series.meter_reading_id,
        "flow": series_flow(series),
        "unit": unit,
        "value_exponent": exponent,
        "raw_unit": uom_label(rt.uom) if rt is not None else None,
        "multiplier": rt.multiplier if rt is not None else None,
        "interval_seconds": rt.interval_length if rt is not None else None,
        "commodity": (
            code_label(COMMODITIES, rt.commodity) if rt and rt.commodity is not None else None
        ),
        "units_known": rt is not None,
    }


def _coverage(series: MeterReading, *, local_zone: Any) -> dict[str, Any]:
    stats = series.readings.aggregate(first=Min("start"), last=Max("start"), count=Count("*"))
    if not stats["count"]:
        return {"first": None, "last": None, "readings": 0, "days_with_gaps": []}
    days = _days_with_gaps(series, local_zone=local_zone)
    return {
        "first": stats["first"],
        "last": stats["last"],
        "readings": stats["count"],
        "days_with_gaps": days,
    }


def _days_with_gaps(series: MeterReading, *, local_zone: Any) -> list[str]:
    """Local days between the first and last reading whose readings do not cover the day."""
    covered: dict[str, int] = {}
    for start, duration in series.readings.values_list("start", "duration").iterator(
        chunk_size=5000
    ):
        day = start.astimezone(local_zone).date().isoformat()
        covered[day] = covered.get(day, 0) + duration
    if not covered:
        return []
    first = min(covered)
    last = max(covered)
    gaps = []
    day = datetime.fromisoformat(first).date()
    end = datetime.fromisoformat(last).date()
    while day <= end:
        start = datetime(day.year, day.month, day.day, tzinfo=local_zone)
        following = day + timedelta(days=1)
        stop = datetime(following.year, following.month, following.day, tzinfo=local_zone)
        length = int((stop - start).total_seconds())
        if covered.get(day.isoformat(), 0) < length:
            gaps.append(day.isoformat())
        day = following
    return gaps


def _usage_point_summary(point: UsagePoint) -> dict[str, Any]:
    """How every answer names a usage point: our id, PG&E's id and the service kind."""
    return {
        "id": point.pk,
        "usage_point_id": point.usage_point_id,
        "service": (
            code_label(SERVICE_KINDS, point.service_kind)
            if point.service_kind is not None
            else None
        ),
    }


def usage_point_describe(*, point: UsagePoint, local_zone: Any) -> dict[str, Any]:
    series = usage_point_series(point=point)
    described = []
    for row in series:
        item = series_describe(row)
        item["coverage"] = _coverage(row, local_zone=local_zone)
        described.append(item)
    return {
        **_usage_point_summary(point),
        "flows": sorted({item["flow"] for item in described}),
        "interval_seconds": sorted(
            {item["interval_seconds"] for item in described if item["interval_seconds"]}
        ),
        "series": described,
    }


def customer_describe(*, customer: Customer) -> dict[str, Any]:
    consents = []
    for authorization in customer.authorizations.order_by("created_at"):
        consents.append(
            {
                "id": str(authorization.public_id),
                "status": Authorization.Status(authorization.status).label,
                "scope": scope_describe(authorization.scope_params) or None,
                "authorized_start": authorization.authorized_start,
                "authorized_end": authorization.authorized_end,
                "expires_at": authorization.expires_at,
                "created_at": authorization.created_at,
                "updated_at": authorization.updated_at,
            }
        )
    points = [_usage_point_summary(point) for point in customer_usage_points(customer=customer)]
    return {
        "external_id": customer.external_id,
        "created_at": customer.created_at,
        "consents": consents,
        "usage_points": points,
        "data_retention": {
            "purge_after": purge_after(customer),
            "purged_at": customer.data_purged_at,
        },
    }


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _line_item(item: dict[str, Any]) -> dict[str, Any]:
    """One costAdditionalDetailLastPeriod entry: amount in currency, the rest as sent."""
    return {
        "note": item.get("note") if isinstance(item.get("note"), str) else None,
        "amount": decimal_text(_int_or_none(item.get("amount")), COST_EXPONENT),
        "item_kind": _int_or_none(item.get("itemKind")),
        "raw": item,
    }


def usage_point_bills(*, point: UsagePoint) -> list[dict[str, Any]]:
    """PG&E's UsageSummary resources of `point`, oldest billing period first."""
    bills = []
    for summary in UsageSummary.objects.filter(usage_point=point).order_by("billing_start", "pk"):
        end = (
            summary.billing_start + timedelta(seconds=summary.billing_duration)
            if summary.billing_start and summary.billing_duration is not None
            else None
        )
        bills.append(
            {
                "id": summary.pk,
                "resource": summary.resource,
                "billing_start": summary.billing_start,
                "billing_end": end,
                "billing_seconds": summary.billing_duration,
                "currency": (
                    code_label(CURRENCIES, summary.currency)
                    if summary.currency is not None
                    else None
                ),
                "bill_last_period": decimal_text(summary.bill_last_period, COST_EXPONENT),
                "bill_to_date": decimal_text(summary.bill_to_date, COST_EXPONENT),
                "cost_additional_last_period": decimal_text(
                    summary.cost_additional_last_period, COST_EXPONENT
                ),
                "consumption": decimal_text(
                    summary.overall_consumption_value,
                    value_unit(
                        summary.overall_consumption_uom, summary.overall_consumption_multiplier
                    )[1],
                ),
                "consumption_unit": (
                    value_unit(
                        summary.overall_consumption_uom, summary.overall_consumption_multiplier
                    )[0]
                    if summary.overall_consumption_uom is not None
                    else None
                ),
                "tariff_profile": summary.tariff_profile or None,
                "read_cycle": summary.read_cycle or None,
                "line_items": [_line_item(item) for item in summary.line_items],
            }
        )
    return bills
