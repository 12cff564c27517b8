"""Webhook events of an import (`data.available`, `bill.available`), written through the
outbox (webhooks.outbox) in the import's transaction, so an import that rolls back announces
nothing and a committed one is always announced.

`data.available`: one event per usage point whose readings changed (new or corrected), with
the series and the local days the document covered, and the document's counts.
`bill.available`: one event per billing-period summary seen for the first time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from gascap.pge.espi.records import BlockRef
from ingest.models import MeterReading, UsageSummary
from ingest.readings_merge import MergeCounts
from ingest.rollups import import_spans
from webhooks.outbox import event_emit, events_emit


def import_events_emit(
    *,
    block_series: Mapping[int, int],
    blocks: Iterable[BlockRef],
    counts: MergeCounts,
    bills: list[UsageSummary],
    now: datetime,
) -> None:
    if counts.new or counts.updated:
        spans = import_spans(block_series=block_series, blocks=blocks)
        by_point: dict[int, list[dict[str, Any]]] = {}
        points: dict[int, str] = {}
        for series in MeterReading.objects.filter(pk__in=list(spans)).select_related("usage_point"):
            span = spans[series.pk]
            points[series.usage_point_id] = series.usage_point.usage_point_id
            by_point.setdefault(series.usage_point_id, []).append(
                {
                    "series": series.pk,
                    "first_day": span[0].isoformat() if span else None,
                    "last_day": span[1].isoformat() if span else None,
                }
            )
        events_emit(
            type="data.available",
            datas=[
                {
                    "usage_point": point_pk,
                    "usage_point_id": points[point_pk],
                    "series": series_list,
                    "readings_new": counts.new,
                    "readings_updated": counts.updated,
                }
                for point_pk, series_list in sorted(by_point.items())
            ],
            now=now,
        )
    for bill in bills:
        event_emit(
            type="bill.available",
            data={
                "usage_point": bill.usage_point_id,
                "bill": bill.pk,
                "billing_start": bill.billing_start,
                "billing_seconds": bill.billing_duration,
            },
            now=now,
        )
