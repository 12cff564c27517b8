"""Request and response shapes of the app API (pydantic, via django-ninja): the OpenAPI
document is generated from these, so the document and the code cannot drift apart."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


class Problem(Schema):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    code: str = Field(description="stable machine-readable reason")
    detail: str | None = None
    instance: str | None = None


class ConsentSessionIn(Schema):
    external_id: str = Field(
        min_length=1, max_length=200, description="the app's own id for its user"
    )
    return_url: str = Field(
        min_length=1,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="where the browser goes after consent; its origin must be allowed",
    )


class ConsentSessionOut(Schema):
    id: str = Field(description="the session's id")
    url: str = Field(description="single-use link that starts the PG&E consent")
    expires_at: datetime


class ConsentOut(Schema):
    id: str
    status: str = Field(description="active, pending, revoked, expired, needs re-consent")
    scope: str | None = Field(description="what the customer shared, in words")
    authorized_start: datetime | None
    authorized_end: datetime | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UsagePointRef(Schema):
    id: int
    usage_point_id: str = Field(description="PG&E's usage point id")
    service: str | None = Field(description="electricity, gas, water")


class DataRetention(Schema):
    purge_after: datetime | None = Field(
        description="when the readings, totals and bills will be deleted (all consents "
        "revoked and GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS set); null: kept"
    )
    purged_at: datetime | None = Field(description="when they were deleted; null: not deleted")


class CustomerOut(Schema):
    external_id: str
    created_at: datetime
    consents: list[ConsentOut]
    usage_points: list[UsagePointRef]
    data_retention: DataRetention


class Coverage(Schema):
    first: datetime | None = Field(description="start of the first reading")
    last: datetime | None = Field(description="start of the last reading")
    readings: int
    days_with_gaps: list[str] = Field(
        description="local days between first and last whose readings do not cover the day"
    )


class SeriesOut(Schema):
    id: int
    meter_reading_id: str
    flow: str = Field(description="delivered, received, net, ... or unknown")
    unit: str | None = Field(description="the unit of `value`s and totals: kWh, therm, ...")
    raw_unit: str | None = Field(description="the unit PG&E's raw values count (e.g. Wh)")
    multiplier: int | None = Field(description="powerOfTenMultiplier of the raw values")
    interval_seconds: int | None
    commodity: str | None
    units_known: bool
    coverage: Coverage


class UsagePointOut(Schema):
    id: int
    usage_point_id: str
    service: str | None
    flows: list[str]
    interval_seconds: list[int]
    series: list[SeriesOut]


class ReadingOut(Schema):
    series: int
    flow: str
    start: datetime
    duration: int = Field(description="seconds")
    value: str | None = Field(description="exact decimal in `unit` (null: units unknown)")
    unit: str | None = Field(description="kWh for energy, therm for gas, else as sent")
    raw_value: int = Field(description="the integer PG&E sent")
    multiplier: int | None = Field(description="PG&E's powerOfTenMultiplier of raw_value")
    raw_unit: int | None = Field(description="ESPI uom code of raw_value (72: Wh)")
    raw_unit_label: str | None = Field(description="raw_unit in words")
    quality: str | None
    cost: str | None = Field(description="exact amount in the currency")


class ReadingsPage(Schema):
    start: datetime
    end: datetime
    page_end: datetime = Field(description="this page covers readings starting before this")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")
    readings: list[ReadingOut]


class TotalOut(Schema):
    start: datetime
    end: datetime
    value: str | None
    readings: int
    complete: bool = Field(description="the readings cover the whole period")
    cost: str | None


class SeriesTotals(Schema):
    series: int
    flow: str
    unit: str | None
    totals: list[TotalOut]


class TotalsOut(Schema):
    interval: str
    time_zone: str
    start: datetime
    end: datetime
    series: list[SeriesTotals]


class LineItem(Schema):
    note: str | None
    amount: str | None
    item_kind: int | None
    raw: dict


class BillOut(Schema):
    id: int
    resource: str
    billing_start: datetime | None
    billing_end: datetime | None
    billing_seconds: int | None
    currency: str | None
    bill_last_period: str | None
    bill_to_date: str | None
    cost_additional_last_period: str | None
    consumption: str | None
    consumption_unit: str | None
    tariff_profile: str | None
    read_cycle: str | None
    line_items: list[LineItem]


class BillsOut(Schema):
    bills: list[BillOut]
