"""What `/metrics` reads at scrape time: rows by status from the database, queue depths from
the broker, the newest reading per commodity; and the exposition of every process's counters
(`ops.metrics`) next to them. Why each figure is counted or read: see `ops.metrics`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

__all__ = [
    "EXTRA",
    "DatabaseCollector",
    "exposition",
    "newest_reading_by_commodity",
    "queue_depths",
]

_COMMODITY_BY_SERVICE_KIND = {0: "electricity", 1: "gas", 2: "water"}


def queue_depths() -> dict[str, int] | None:
    """Messages waiting in each Celery queue (None when the broker does not answer)."""
    from django.conf import settings

    from gascap.celery import app

    depths: dict[str, int] = {}
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=0)
            channel = connection.default_channel
            for queue in settings.CELERY_TASK_QUEUES_NAMES:
                try:
                    depths[queue] = int(channel.queue_declare(queue=queue, passive=True)[1])
                except Exception:  # a queue nobody declared yet holds nothing
                    depths[queue] = 0
                    channel = connection.channel()
    except Exception as exc:
        logger.warning("metrics: broker did not answer: %s", type(exc).__name__)
        return None
    return depths


def newest_reading_by_commodity() -> dict[str, datetime]:
    """End of the newest stored interval per commodity: one index lookup per series (the
    readings' primary key leads with the series), never an aggregate over the readings."""
    from django.db.models import OuterRef, Subquery

    from ingest.models import IntervalReading, MeterReading

    newest = IntervalReading.objects.filter(meter_reading=OuterRef("pk")).order_by("-start")
    rows = MeterReading.objects.annotate(
        last_start=Subquery(newest.values("start")[:1])
    ).values_list("usage_point__service_kind", "last_start")
    found: dict[str, datetime] = {}
    for kind, last in rows:
        if last is None:
            continue
        name = _COMMODITY_BY_SERVICE_KIND.get(kind, "unknown") if kind is not None else "unknown"
        if name not in found or last > found[name]:
            found[name] = last
    return found


class DatabaseCollector(Collector):
    """Gauges computed from the database and the broker on each scrape."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from customers.models import Authorization
        from ingest.models import Fetch, Notification

        def by_status(name: str, doc: str, model: Any, choices: Any) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=["status"])
            counts = dict(model.objects.order_by().values_list("status").annotate(n=Count("pk")))
            for value in choices.values:
                family.add_metric([value], counts.get(value, 0))
            return family

        yield by_status(
            "gascap_notifications", "Notification rows by status", Notification, Notification.Status
        )
        yield by_status("gascap_fetches", "Fetch rows by outcome/status", Fetch, Fetch.Status)
        yield by_status(
            "gascap_consents",
            "Consents (authorizations) by status",
            Authorization,
            Authorization.Status,
        )

        age = GaugeMetricFamily(
            "gascap_newest_reading_age_seconds",
            "Seconds since the end of the newest stored reading, per commodity",
            labels=["commodity"],
        )
        now = self.now()
        for commodity, start in sorted(newest_reading_by_commodity().items()):
            age.add_metric([commodity], max(0.0, (now - start).total_seconds()))
        yield age

        depths = queue_depths()
        up = GaugeMetricFamily("gascap_broker_up", "Whether the broker answered the scrape")
        up.add_metric([], 0 if depths is None else 1)
        yield up
        queue = GaugeMetricFamily(
            "gascap_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
        )
        for name, depth in sorted((depths or {}).items()):
            queue.add_metric([name], depth)
        yield queue

        from ops.models import AlertSent

        unsent = GaugeMetricFamily(
            "gascap_alerts_undelivered",
            "Alerts whose mail or ops webhook has not gone out yet (retried by the next check)",
        )
        unsent.add_metric([], AlertSent.objects.exclude(last_error="").count())
        yield unsent

        yield from _extra_collectors_collect()


# Other figures (the alerts module's, a budget's) register a function here.
EXTRA: list[Callable[[], Iterator[GaugeMetricFamily]]] = []


def _extra_collectors_collect() -> Iterator[GaugeMetricFamily]:
    for collect in EXTRA:
        yield from collect()


def exposition(*, now: Callable[[], datetime]) -> tuple[bytes, str]:
    """The scrape body and its content type: every process's counters plus the gauges."""
    import os

    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        MultiProcessCollector(counters)
    else:  # one process only (development without the directory): this process's counts
        counters = REGISTRY
    gauges = CollectorRegistry()
    gauges.register(DatabaseCollector(now))
    return generate_latest(counters) + generate_latest(gauges), CONTENT_TYPE_LATEST
