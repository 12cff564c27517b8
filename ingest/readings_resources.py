"""Storing a document's small resources: reading types, usage points (with the authorization
the fetch binds them to), series and usage summaries — a handful of ORM rows per document,
written by `ingest.readings.document_import` once the document has ended and its links are
resolved (docs/espi.md, "Storage")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gascap.pge.espi_types import (
    EspiDocument,
    ReadingTypeInfo,
    Series,
    UsagePointInfo,
    UsageSummaryInfo,
)
from ingest.models import MeterReading, ReadingType, UsagePoint, UsageSummary
from ingest.usage_point_binding import DocumentRefused

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RT_COLUMNS = {
    "uom": "uom",
    "powerOfTenMultiplier": "power_of_ten_multiplier",
    "flowDirection": "flow_direction",
    "kind": "kind",
    "intervalLength": "interval_length",
    "accumulationBehaviour": "accumulation_behaviour",
    "commodity": "commodity",
    "currency": "currency",
    "dataQualifier": "data_qualifier",
    "defaultQuality": "default_quality",
    "timeAttribute": "time_attribute",
    "measuringPeriod": "measuring_period",
    "phase": "phase",
    "tou": "tou",
    "cpp": "cpp",
    "consumptionTier": "consumption_tier",
}


def last_segment(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1][:200]


def epoch(seconds: int | None) -> datetime | None:
    return None if seconds is None else _EPOCH + timedelta(seconds=seconds)


def reading_type_store(info: ReadingTypeInfo, *, now: datetime) -> ReadingType:
    values = {column: info.codes.get(code) for code, column in _RT_COLUMNS.items()}
    row, _created = ReadingType.objects.get_or_create(
        href=info.href[:500], signature=info.signature, defaults={**values, "created_at": now}
    )
    return row


def usage_point_store(
    href: str,
    info: UsagePointInfo | None,
    doc: EspiDocument,
    *,
    authorization_id: int | None,
    now: datetime,
) -> UsagePoint:
    defaults: dict[str, object] = {"usage_point_id": last_segment(href), "updated_at": now}
    changes: dict[str, object] = {}
    if authorization_id is not None:
        changes["authorization_id"] = authorization_id
    if info is not None:
        if info.service_kind is not None:
            changes["service_kind"] = info.service_kind
        if info.status is not None:
            changes["status"] = info.status
        ltp = next(
            (
                doc.local_time_parameters[h]
                for h in info.links.related
                if h in doc.local_time_parameters
            ),
            None,
        )
        if ltp is not None:
            changes["local_time"] = {
                "dst_start_rule": ltp.dst_start_rule,
                "dst_end_rule": ltp.dst_end_rule,
                "dst_offset": ltp.dst_offset,
                "tz_offset": ltp.tz_offset,
            }
    row, created = UsagePoint.objects.get_or_create(
        href=href[:500], defaults={**defaults, **changes, "created_at": now}
    )
    if (
        not created
        and authorization_id is not None
        and row.authorization_id not in (None, authorization_id)
    ):
        raise DocumentRefused(
            "foreign_usage_point",
            f"usage point {href[:300]!r} belongs to another authorization",
        )
    if not created and any(getattr(row, k) != v for k, v in changes.items()):
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = now
        row.save(update_fields=[*changes, "updated_at"])
    return row


def series_store(
    series: Series, usage_point: UsagePoint, reading_type: ReadingType | None, *, now: datetime
) -> tuple[MeterReading, bool]:
    """The series row, and whether this import created it (then it holds no reading yet)."""
    href = series.meter_reading_href[:500]
    if reading_type is None:
        # A blocks-only document (a resource-level IntervalBlock GET): when the database
        # already holds exactly one series with known units for this MeterReading, the
        # ReadingType is not missing, it was delivered before.
        known = list(
            MeterReading.objects.filter(
                usage_point=usage_point, href=href, reading_type__isnull=False
            )[:2]
        )
        if len(known) == 1:
            return known[0], False
    row, created = MeterReading.objects.get_or_create(
        usage_point=usage_point,
        href=href,
        reading_type=reading_type,
        defaults={
            "meter_reading_id": last_segment(href),
            "reading_type_href": (series.reading_type_href or "")[:500],
            "created_at": now,
        },
    )
    return row, created


def summary_usage_point_href(summary: UsageSummaryInfo, doc: EspiDocument) -> str | None:
    collection = summary.links.up_href
    if not collection and summary.href:
        collection = summary.href.rstrip("/").rsplit("/", 1)[0]
    if collection:
        for name in ("/UsageSummary", "/ElectricPowerUsageSummary"):
            if collection.rstrip("/").endswith(name):
                derived = collection.rstrip("/")[: -len(name)]
                if derived in doc.usage_points or len(doc.usage_points) != 1:
                    return derived
    if len(doc.usage_points) == 1:
        return next(iter(doc.usage_points))
    return None


def summary_store(
    summary: UsageSummaryInfo, usage_point: UsagePoint, *, source_label: str, now: datetime
) -> tuple[UsageSummary, bool]:
    """Store a billing-period summary; returns the row and whether it is new."""
    consumption = summary.overall_consumption
    key = summary.href or f"#billing/{summary.billing_start}/{summary.billing_duration}"
    return UsageSummary.objects.update_or_create(
        usage_point=usage_point,
        href=key[:500],
        billing_start=epoch(summary.billing_start),
        billing_duration=summary.billing_duration,
        defaults={
            "resource": summary.resource,
            "bill_last_period": summary.bill_last_period,
            "bill_to_date": summary.bill_to_date,
            "cost_additional_last_period": summary.cost_additional_last_period,
            "currency": summary.currency,
            "commodity": summary.commodity,
            "tariff_profile": summary.tariff_profile[:100],
            "read_cycle": summary.read_cycle[:100],
            "status_timestamp": summary.status_timestamp,
            "overall_consumption_value": consumption.value if consumption else None,
            "overall_consumption_multiplier": consumption.multiplier if consumption else None,
            "overall_consumption_uom": consumption.uom if consumption else None,
            "line_items": summary.line_items,
            "fields": summary.fields,
            "source_label": source_label[:500],
            "updated_at": now,
        },
    )
