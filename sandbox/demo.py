"""The sandbox's demo customers: fictional homes with fixed, opaque identifiers.

Nothing here resembles a real customer: names say "Demo", ids are derived from a hash of a
fixed label, so they are stable across runs (gascap and the tests can rely on them) but carry
no meaning, like PG&E's (docs/espi-model.md §3: ids are opaque).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

# ESPI codes (docs/espi-model.md §4).
SERVICE_ELECTRIC = 0
SERVICE_GAS = 1
UOM_WH = 72
UOM_THERM = 169
FLOW_DELIVERED = 1
FLOW_RECEIVED = 19


def _opaque(label: str, digits: int = 10) -> str:
    """A deterministic numeric-looking id (PG&E's subscription / usage point ids are digits)."""
    number = int(hashlib.sha256(f"gascap-sandbox:{label}".encode()).hexdigest(), 16)
    return str(number % 10**digits).rjust(digits, "7")


@dataclass(frozen=True)
class SeriesSpec:
    """One MeterReading and its ReadingType."""

    key: str
    uom: int
    multiplier: int
    interval: int
    flow_direction: int
    commodity: int
    measuring_period: int
    time_attribute: int

    @property
    def reading_type_id(self) -> str:
        # PG&E: base64 of "uom:null:interval:1" (pge_smd_2020_gas_daily_therm_bulk.xml); the
        # flow direction is appended so delivered and received series get distinct types.
        raw = f"{self.uom}:null:{self.interval}:{self.flow_direction}"
        return base64.b64encode(raw.encode()).decode()

    @property
    def meter_reading_id(self) -> str:
        # PG&E: base64 of "{ReadingType id}:1".
        return base64.b64encode(f"{self.reading_type_id}:1".encode()).decode()


@dataclass(frozen=True)
class UsagePointSpec:
    usage_point_id: str
    service_kind: int
    series: tuple[SeriesSpec, ...]
    # PG&E CMD 2016 split a DST day into two blocks at the transition; SMD 2019 sent one
    # 23/25-hour block (docs/espi-model.md §5). One demo customer does each.
    split_dst_days: bool = False


@dataclass(frozen=True)
class DemoCustomer:
    key: str
    name: str
    subscription_id: str
    usage_points: tuple[UsagePointSpec, ...]
    description: str

    @property
    def seed(self) -> str:
        return f"sandbox:{self.key}"


def _electric(*, key: str, interval: int, flow_direction: int, measuring_period: int) -> SeriesSpec:
    """An electric series of the demo homes: Wh x 10^-3, commodity 1 (electricity, secondary
    metered: docs/espi-model.md §4.1), timeAttribute 0 (n/a); each caller gives its interval,
    flow and measuringPeriod."""
    return SeriesSpec(
        key=key,
        uom=UOM_WH,
        multiplier=-3,
        interval=interval,
        flow_direction=flow_direction,
        commodity=1,
        measuring_period=measuring_period,
        time_attribute=0,
    )


ELECTRIC_15MIN = _electric(
    key="delivered", interval=900, flow_direction=FLOW_DELIVERED, measuring_period=2
)
ELECTRIC_HOURLY = _electric(
    key="delivered", interval=3600, flow_direction=FLOW_DELIVERED, measuring_period=7
)
SOLAR_HOURLY = _electric(
    key="received", interval=3600, flow_direction=FLOW_RECEIVED, measuring_period=7
)
# PG&E gas: therms, multiplier -8, daily, timeAttribute 11, measuringPeriod 4
# (pge_smd_2020_gas_daily_therm_bulk.xml).
GAS_DAILY = SeriesSpec(
    key="gas",
    uom=UOM_THERM,
    multiplier=-8,
    interval=86400,
    flow_direction=FLOW_DELIVERED,
    commodity=7,
    measuring_period=4,
    time_attribute=11,
)

DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        key="electric",
        name="Demo Electric Home",
        subscription_id=_opaque("subscription:electric", 8),
        usage_points=(UsagePointSpec(_opaque("usage-point:electric"), 0, (ELECTRIC_15MIN,)),),
        description="electric, 15-minute intervals",
    ),
    DemoCustomer(
        key="solar",
        name="Demo Solar Home",
        subscription_id=_opaque("subscription:solar", 8),
        usage_points=(
            UsagePointSpec(
                _opaque("usage-point:solar"),
                SERVICE_ELECTRIC,
                (ELECTRIC_HOURLY, SOLAR_HOURLY),
                split_dst_days=True,
            ),
        ),
        description="electric with solar, hourly, delivered (fd 1) and received (fd 19)",
    ),
    DemoCustomer(
        key="gas",
        name="Demo Gas Home",
        subscription_id=_opaque("subscription:gas", 8),
        usage_points=(UsagePointSpec(_opaque("usage-point:gas"), SERVICE_GAS, (GAS_DAILY,)),),
        description="gas, daily therms (multiplier -8, days start at local midnight + 1 s)",
    ),
)

# The Function-Block scope PG&E grants (docs/pge-protocol.md "Scope strings").
DEFAULT_SCOPE = (
    "FB=1_3_4_5_8_10_13_14_15_18_19_31_32_35_37_38_39_40;IntervalDuration=900_3600_86400;"
    "BlockDuration=Daily;HistoryLength=63072000;SubscriptionFrequency=Daily;AccountCollection=1;"
)


def customer_by_key(key: str) -> DemoCustomer | None:
    return next((c for c in DEMO_CUSTOMERS if c.key == key), None)


def customer_by_subscription(subscription_id: str) -> DemoCustomer | None:
    return next((c for c in DEMO_CUSTOMERS if c.subscription_id == subscription_id), None)


def reading_type_by_id(reading_type_id: str) -> SeriesSpec | None:
    for customer in DEMO_CUSTOMERS:
        for usage_point in customer.usage_points:
            for series in usage_point.series:
                if series.reading_type_id == reading_type_id:
                    return series
    return None
