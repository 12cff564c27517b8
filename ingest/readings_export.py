"""Reading export (a selector): the CSV rows `manage.py export_readings` writes.

One row per stored reading, ordered by usage point, meter reading, start. Values are exact
decimals in the series' unit (value x 10^powerOfTenMultiplier); a series whose ReadingType is
still missing exports its raw integer with an empty unit. Cost is the exact currency amount
(PG&E sends 10^-5 units, docs/espi-model.md §6).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

from gascap.pge.espi.codes import COMMODITIES, FLOW_DIRECTIONS, uom_label
from ingest.models import IntervalReading

__all__ = ["CSV_HEADER", "readings_export_rows"]

CSV_HEADER = (
    "usage_point",
    "meter_reading",
    "commodity",
    "uom",
    "flow_direction",
    "start",
    "duration",
    "value",
    "quality",
    "cost",
)
# When a ReadingType carries no commodity, the UsagePoint's service kind says which one.
_SERVICE_COMMODITY = {0: "electricity", 1: "natural gas", 2: "water"}


def _iso_z(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value: int, exponent: int) -> str:
    return format(Decimal(value).scaleb(exponent), "f")


def _label(table: dict[int, str], code: int | None) -> str:
    if code is None:
        return ""
    return table.get(code, str(code))


def readings_export_rows(
    *,
    usage_point_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    usage_point_pk: int | None = None,
    series_pk: int | None = None,
    limit: int | None = None,
) -> Iterator[tuple[str, ...]]:
    """Yield CSV rows (strings), streaming from the database in chunks.

    `usage_point_id` is PG&E's id (every stored UsagePoint with it); `usage_point_pk` one row.
    """
    query = IntervalReading.objects.all()
    if usage_point_id:
        query = query.filter(meter_reading__usage_point__usage_point_id=usage_point_id)
    if usage_point_pk is not None:
        query = query.filter(meter_reading__usage_point_id=usage_point_pk)
    if series_pk is not None:
        query = query.filter(meter_reading_id=series_pk)
    if start is not None:
        query = query.filter(start__gte=start)
    if end is not None:
        query = query.filter(start__lt=end)
    query = query.order_by(
        "meter_reading__usage_point__usage_point_id",
        "meter_reading__usage_point_id",
        "meter_reading__meter_reading_id",
        "meter_reading_id",
        "start",
        "duration",
    ).values_list(
        "meter_reading__usage_point__usage_point_id",
        "meter_reading__usage_point__service_kind",
        "meter_reading__meter_reading_id",
        "meter_reading__reading_type_id",
        "meter_reading__reading_type__commodity",
        "meter_reading__reading_type__uom",
        "meter_reading__reading_type__power_of_ten_multiplier",
        "meter_reading__reading_type__flow_direction",
        "meter_reading__reading_type__default_quality",
        "start",
        "duration",
        "value",
        "quality",
        "cost",
    )
    if limit is not None:
        query = query[:limit]
    for (
        up_id,
        service_kind,
        mr_id,
        rt_id,
        commodity,
        uom,
        multiplier,
        flow,
        default_quality,
        moment,
        duration,
        value,
        quality,
        cost,
    ) in query.iterator(chunk_size=5000):
        known = rt_id is not None
        if commodity is not None:
            commodity_text = _label(COMMODITIES, commodity)
        else:
            commodity_text = (
                _SERVICE_COMMODITY.get(service_kind, "") if service_kind is not None else ""
            )
        quality = quality if quality is not None else default_quality
        yield (
            up_id,
            mr_id,
            commodity_text,
            uom_label(uom) if known else "",
            _label(FLOW_DIRECTIONS, flow) if known else "",
            _iso_z(moment),
            str(duration),
            _decimal(value, multiplier or 0) if known else str(value),
            "" if quality is None else str(quality),
            "" if cost is None else _decimal(cost, -5),
        )
