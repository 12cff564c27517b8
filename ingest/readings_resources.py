"""Storing a document's small resources: reading types, usage points (with the authorization
the fetch binds them to), series and usage summaries, written by
`ingest.readings.document_import` once the document has ended and its links are resolved
(docs/espi.md, "Storage"). Usage points and series are stored set-based, a few statements per
document whatever its size: a 500-customer Bulk document names 750 usage points, and one
round trip each was most of its import (docs/scale.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from django.db import connection

from gascap.pge.espi.records import (
    EspiDocument,
    ReadingTypeInfo,
    Series,
    UsagePointInfo,
    UsageSummaryInfo,
)
from ingest.models import MeterReading, ReadingType, UsagePoint, UsageSummary
from ingest.usage_point_binding import DocumentRefused

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Rows per statement: well under SQLite's and PostgreSQL's bound-parameter limits.
_BATCH = 500
_T = TypeVar("_T")
SeriesKey = tuple[int, str, "int | None"]  # (usage point id, href, reading type id)
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


def _usage_point_changes(
    info: UsagePointInfo | None, doc: EspiDocument, authorization_id: int | None
) -> dict[str, object]:
    """The fields a document sets on its usage point (what it lacks is left as stored)."""
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
    return changes


def _chunks(items: list[_T]) -> Iterator[list[_T]]:
    for offset in range(0, len(items), _BATCH):
        yield items[offset : offset + _BATCH]


def usage_points_store(
    wanted: dict[str, int | None], doc: EspiDocument, *, now: datetime
) -> dict[str, UsagePoint]:
    """Store a document's usage points at once; `wanted` maps each href to the authorization
    the binding gives it (None: unbound). Returns the stored row of every href.

    One select of the stored rows; for new hrefs one `INSERT … ON CONFLICT DO NOTHING` and a
    select (a concurrent import that inserted one first wins, and its binding is checked like
    any stored row's); one bulk update of the rows whose fields the document changes. A usage
    point bound to another authorization refuses the whole document (`DocumentRefused`).
    """
    keys = {href: href[:500] for href in wanted}
    changes = {
        href: _usage_point_changes(doc.usage_points.get(href), doc, authorization_id)
        for href, authorization_id in wanted.items()
    }
    rows: dict[str, UsagePoint] = {}
    for chunk in _chunks(sorted(set(keys.values()))):
        rows.update((row.href, row) for row in UsagePoint.objects.filter(href__in=chunk))
    missing = {key: href for href, key in keys.items() if key not in rows}
    if missing:
        UsagePoint.objects.bulk_create(
            [
                UsagePoint(
                    href=key,
                    usage_point_id=last_segment(href),
                    created_at=now,
                    updated_at=now,
                    **changes[href],
                )
                for key, href in missing.items()
            ],
            ignore_conflicts=True,
            batch_size=_BATCH,
        )
        for chunk in _chunks(sorted(missing)):
            rows.update((row.href, row) for row in UsagePoint.objects.filter(href__in=chunk))
    changed: dict[int, UsagePoint] = {}
    fields: set[str] = set()
    for href, authorization_id in wanted.items():
        row = rows[keys[href]]
        if authorization_id is not None and row.authorization_id not in (None, authorization_id):
            raise DocumentRefused(
                "foreign_usage_point",
                f"usage point {href[:300]!r} belongs to another authorization",
            )
        differing = {k: v for k, v in changes[href].items() if getattr(row, k) != v}
        if differing:
            for key, value in differing.items():
                setattr(row, key, value)
            row.updated_at = now
            changed[row.pk] = row
            fields.update(differing)
    if changed:
        UsagePoint.objects.bulk_update(
            list(changed.values()), [*sorted(fields), "updated_at"], batch_size=_BATCH
        )
    return {href: rows[key] for href, key in keys.items()}


def series_store(
    wanted: list[tuple[Series, UsagePoint, ReadingType | None]], *, now: datetime
) -> dict[str, tuple[MeterReading, bool]]:
    """Store a document's series at once. Returns, by MeterReading href, the row and whether
    this import created it (then it holds no reading yet: the merge skips the comparison).

    One select of the usage points' stored series; for missing ones one `INSERT … ON
    CONFLICT DO NOTHING RETURNING id` (it returns only the rows this import created, so a
    series a concurrent import created first is never taken for an empty one) and a select.
    """
    by_key: dict[SeriesKey, MeterReading] = {}
    known: dict[tuple[int, str], list[MeterReading]] = {}

    def load(usage_point_ids: set[int]) -> None:
        for chunk in _chunks(sorted(usage_point_ids)):
            for row in MeterReading.objects.filter(usage_point_id__in=chunk):
                by_key[(row.usage_point_id, row.href, row.reading_type_id)] = row
                if row.reading_type_id is not None:
                    twins = known.setdefault((row.usage_point_id, row.href), [])
                    if row not in twins:
                        twins.append(row)

    load({usage_point.pk for _, usage_point, _ in wanted})
    found: dict[str, tuple[MeterReading, bool]] = {}
    missing: dict[SeriesKey, Series] = {}
    pending: list[tuple[str, SeriesKey]] = []
    for series, usage_point, reading_type in wanted:
        href = series.meter_reading_href[:500]
        if reading_type is None:
            # A blocks-only document (a resource-level IntervalBlock GET): when the database
            # already holds exactly one series with known units for this MeterReading, the
            # ReadingType is not missing, it was delivered before.
            twins = known.get((usage_point.pk, href), [])
            if len(twins) == 1:
                found[series.meter_reading_href] = (twins[0], False)
                continue
        key = (usage_point.pk, href, reading_type.pk if reading_type else None)
        if key in by_key:
            found[series.meter_reading_href] = (by_key[key], False)
        else:
            missing.setdefault(key, series)
            pending.append((series.meter_reading_href, key))
    if missing:
        created = _series_insert(missing, now=now)
        load({key[0] for key in missing})
        for meter_reading_href, key in pending:
            row = by_key[key]
            found[meter_reading_href] = (row, row.pk in created)
    return found


def _series_insert(missing: dict[SeriesKey, Series], *, now: datetime) -> set[int]:
    """INSERT the missing series, skipping any a concurrent import stored first; the ids of
    the rows inserted here. SQL from the model's own names (SQLite ≥ 3.35 and PostgreSQL both
    take `ON CONFLICT DO NOTHING RETURNING`; the conflict is either partial unique index)."""
    meta = MeterReading._meta
    quote = connection.ops.quote_name
    names = ("usage_point", "href", "meter_reading_id", "reading_type", "reading_type_href")
    columns = ", ".join(quote(meta.get_field(name).column) for name in (*names, "created_at"))
    stamp = connection.ops.adapt_datetimefield_value(now)
    created: set[int] = set()
    with connection.cursor() as cursor:
        for chunk in _chunks(list(missing.items())):
            params: list[object] = []
            for (usage_point_id, href, reading_type_id), series in chunk:
                params += [
                    usage_point_id,
                    href,
                    last_segment(href),
                    reading_type_id,
                    (series.reading_type_href or "")[:500],
                    stamp,
                ]
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608 - model names
                + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                + f" ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}",
                params,
            )
            created.update(pk for (pk,) in cursor.fetchall())
    return created


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
