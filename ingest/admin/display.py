"""How the reading storage reads to an operator: stored instants in PG&E's local zone
(`gascap.middleware`), raw integers scaled exactly, ESPI codes in words as "label (code)"
(`gascap.pge.espi.codes`, docs/espi-model.md §4: the enumerations are open, so unknown codes
show as the number), list filters over codes, and a series or reading type as one line."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gascap.pge.espi.codes import (
    ACCUMULATIONS,
    COMMODITIES,
    CURRENCIES,
    DATA_QUALIFIERS,
    FLOW_DIRECTIONS,
    MEASUREMENT_KINDS,
    MEASURING_PERIODS,
    MULTIPLIERS,
    PHASES,
    QUALITIES,
    TIME_ATTRIBUTES,
    UOM_LABELS,
    code_label,
    reading_type_describe,
)
from ingest.models import MeterReading, ReadingType


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def local_text(moment: Any) -> str:
    """A stored (UTC) instant in PG&E's local time, e.g. "2026-03-01 00:00 PST"."""
    if moment is None:
        return "-"
    if isinstance(moment, str):  # SQLite hands some aggregates back as text
        moment = parse_datetime(moment)
    return timezone.localtime(moment, local_zone()).strftime("%Y-%m-%d %H:%M %Z")


def scaled(value: int, exponent: int) -> str:
    """value x 10^exponent exactly, without float (PG&E gas multiplier -8, money -5)."""
    return format(Decimal(value).scaleb(exponent), "f")


def code_filter(field: str, table: dict[int, str], title: str) -> type[admin.SimpleListFilter]:
    """A list filter over the codes present in `field`, each shown as "label (code)"."""

    class CodeFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            rows = model_admin.model.objects.order_by().values_list(field, flat=True).distinct()
            return [
                (str(c), code_label(table, c)) for c in sorted(c for c in rows if c is not None)
            ]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            if value is None:
                return queryset
            if not value.lstrip("-").isdigit():
                return queryset.none()
            return queryset.filter(**{field: int(value)})

    CodeFilter.title = title
    return CodeFilter


def reading_type_text(rt: ReadingType | None) -> str:
    if rt is None:
        return "units unknown (ReadingType not received yet)"
    return reading_type_describe(
        uom=rt.uom,
        multiplier=rt.power_of_ten_multiplier,
        flow_direction=rt.flow_direction,
        interval=rt.interval_length,
    )


def series_text(series: MeterReading) -> str:
    """A series as an operator reads it: usage point, MeterReading id and its units."""
    return (
        f"{series.usage_point.usage_point_id} / {series.meter_reading_id}: "
        f"{reading_type_text(series.reading_type)}"
    )


RT_CODES: tuple[tuple[str, dict[int, str], str], ...] = (
    ("uom", UOM_LABELS, "unit (uom)"),
    ("power_of_ten_multiplier", MULTIPLIERS, "power of ten multiplier"),
    ("flow_direction", FLOW_DIRECTIONS, "flow direction"),
    ("kind", MEASUREMENT_KINDS, "measurement kind"),
    ("accumulation_behaviour", ACCUMULATIONS, "accumulation"),
    ("commodity", COMMODITIES, "commodity"),
    ("default_quality", QUALITIES, "default quality"),
    ("currency", CURRENCIES, "currency"),
    ("data_qualifier", DATA_QUALIFIERS, "data qualifier"),
    ("time_attribute", TIME_ATTRIBUTES, "time attribute"),
    ("measuring_period", MEASURING_PERIODS, "measuring period"),
    ("phase", PHASES, "phase"),
)


def rt_code_display(field: str, table: dict[int, str], title: str) -> Any:
    def show(obj: ReadingType) -> str:
        return code_label(table, getattr(obj, field)) or "-"

    return admin.display(description=title, ordering=field)(show)
