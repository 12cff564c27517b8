"""The sandbox's scale mode: N synthetic subscriptions answered through Bulk.

`GASCAP_SANDBOX_SCALE_CUSTOMERS=N` (or `SandboxConfig.scale_customers`) makes the sandbox
act as PG&E does for a third party with N consents: every one of them is in the Bulk feed,
and the BatchList that answers one Bulk request names several `Batch/Bulk/{BulkID}?
correlationID=…` documents, each covering a slice of the customers (docs/pge-protocol.md
shows a two-URL Bulk BatchList; how many customers PG&E puts in one document is not stated —
`scale_per_document` is the sandbox's own choice, and gascap does not depend on it).

Customers are generated lazily from their index and are deterministic: customer i has the
subscription id `8` + i in nine digits and electric 15-minute usage; every second one also has
a gas daily usage point ("electric 15-minute and gas daily mixed"). Nothing is kept per
customer, so N = 100,000 costs no memory until a document is streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sandbox.demo import (
    ELECTRIC_15MIN,
    GAS_DAILY,
    SERVICE_ELECTRIC,
    SERVICE_GAS,
    DemoCustomer,
    UsagePointSpec,
)
from sandbox.readings import day_readings

SUBSCRIPTION_PREFIX = "8"
USAGE_POINT_PREFIX = "6"
DIGITS = 9


def scale_customer(index: int) -> DemoCustomer:
    """Synthetic customer `index` (0-based), the same on every call and every run."""
    number = f"{index:0{DIGITS}d}"
    usage_points = [
        UsagePointSpec(f"{USAGE_POINT_PREFIX}{number}0", SERVICE_ELECTRIC, (ELECTRIC_15MIN,))
    ]
    if index % 2 == 1:
        usage_points.append(
            UsagePointSpec(f"{USAGE_POINT_PREFIX}{number}1", SERVICE_GAS, (GAS_DAILY,))
        )
    return DemoCustomer(
        key=f"scale-{number}",
        name=f"Scale Demo {number}",
        subscription_id=f"{SUBSCRIPTION_PREFIX}{number}",
        usage_points=tuple(usage_points),
        description="synthetic scale-mode customer",
    )


def scale_subscription_ids(count: int) -> list[str]:
    return [f"{SUBSCRIPTION_PREFIX}{index:0{DIGITS}d}" for index in range(count)]


def scale_customer_by_subscription(subscription_id: str, *, count: int) -> DemoCustomer | None:
    digits = subscription_id[len(SUBSCRIPTION_PREFIX) :]
    if not subscription_id.startswith(SUBSCRIPTION_PREFIX) or len(digits) != DIGITS:
        return None
    if not digits.isdigit() or int(digits) >= count:
        return None
    return scale_customer(int(digits))


def scale_slices(*, count: int, per_document: int) -> list[tuple[int, int]]:
    """[first, end) customer index ranges, one per Bulk correlation document."""
    size = max(1, per_document)
    return [(low, min(count, low + size)) for low in range(0, count, size)]


def scale_customers(first: int, end: int) -> Iterator[DemoCustomer]:
    for index in range(first, end):
        yield scale_customer(index)


def scale_expected(*, count: int, days: list[date], today: date) -> tuple[int, int, int]:
    """(readings, sum of values, sum of starts) the Bulk feed of `days` carries for `count`
    customers: what a consumer must have stored exactly once."""
    readings = value_sum = start_sum = 0
    for customer in scale_customers(0, count):
        for usage_point in customer.usage_points:
            for series in usage_point.series:
                for day in days:
                    for reading in day_readings(customer, usage_point, series, day, today=today):
                        readings += 1
                        value_sum += reading.value
                        start_sum += reading.start
    return readings, value_sum, start_sum
