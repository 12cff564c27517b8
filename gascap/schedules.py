"""The project's periodic schedules (django-celery-beat rows, editable in the admin): one
table for every app's periodic work (ingest's, customers', webhooks', ops'), each naming its
task by registered name, so this module imports no app. Created idempotently by `migrate`
(gascap/beat.py) and `manage.py ensure_schedules` (which `make run` runs).

A schedule that already exists is left as the operator edited it: only missing rows are made.
Retired schedules (`RETIRED`) are deleted from existing installs: the 2-minute token-refresh
sweep spent ~24 PG&E calls per customer a day (docs/pge-protocol.md, "Rate limits"); tokens
are now refreshed when work needs one.
Daily jobs run on Pacific time, PG&E's day (docs/pge-protocol.md: data is grouped by local day).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    task: str
    description: str
    every_seconds: int | None = None  # interval schedule
    hour: int | None = None  # daily crontab (local time)
    minute: int = 0


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        name="ingest: daily data request",
        task="ingest.daily_data_request",
        description="Ask PG&E for yesterday's data (per subscription, or one Bulk request).",
        hour=6,
        minute=30,
    ),
    ScheduleSpec(
        name="customers: purge consent states",
        task="customers.consent_states_purge",
        description="Delete consent states older than a day (no PG&E call).",
        hour=3,
        minute=10,
    ),
    ScheduleSpec(
        name="customers: poll authorizations",
        task="customers.authorizations_poll",
        description="Daily Authorization poll: revocations are not reliably notified.",
        hour=5,
        minute=15,
    ),
    ScheduleSpec(
        name="ingest: sweep stuck work",
        task="ingest.sweep_stuck",
        description="Re-queue notifications and fetches the broker lost or whose worker died.",
        # GASCAP_INGEST_SWEEP_PERIOD: a dead worker's rows are taken over within two periods.
        every_seconds=int(settings.GASCAP_INGEST_SWEEP_PERIOD),
    ),
    ScheduleSpec(
        name="ingest: customer data retention",
        task="ingest.customer_data_purge",
        description="Delete revoked customers' data after GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS.",
        hour=3,
        minute=40,
    ),
    ScheduleSpec(
        name="webhooks: sweep stuck deliveries",
        task="webhooks.sweep",
        description="Re-queue webhook deliveries the broker lost or a dead worker left.",
        every_seconds=120,
    ),
    ScheduleSpec(
        name="ingest: gap audit",
        task="ingest.gap_audit",
        description="Find missing intervals and fetch exactly those days synchronously.",
        hour=9,
        minute=45,
    ),
    ScheduleSpec(
        name="ingest: prune pipeline tables",
        task="ingest.pipeline_prune",
        description="Delete notifications, fetches and attempts past their retention.",
        # Before the 05:15 poll and the 06:30 request: the quietest hour of gascap's day.
        hour=3,
        minute=40,
    ),
    ScheduleSpec(
        name="ingest: readings partitions ahead",
        task="ingest.readings_partitions_ahead",
        description="PostgreSQL: create the next months' readings partitions (docs/scale.md §5).",
        hour=3,
        minute=20,
    ),
    ScheduleSpec(
        name="ops: alert check",
        task="ops.alerts_check",
        description="Mail ADMINS (and the ops webhook) about conditions needing an operator.",
        every_seconds=900,
    ),
)


def _schedule_fields(spec: ScheduleSpec) -> dict[str, object]:
    if spec.every_seconds is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=spec.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval}
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(spec.minute),
        hour=str(spec.hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.GASCAP_LOCAL_TIME_ZONE,
    )
    return {"crontab": crontab}


# Tasks no schedule may run any more (matched by task, whatever the operator named the row).
RETIRED_TASKS = ("customers.tokens_refresh_expiring",)


def schedules_ensure() -> list[tuple[str, bool]]:
    """Create the missing PeriodicTask rows and delete retired ones; returns (name, created)
    for each schedule."""
    results = []
    with transaction.atomic():
        PeriodicTask.objects.filter(task__in=RETIRED_TASKS).delete()
        for spec in SCHEDULES:
            if PeriodicTask.objects.filter(name=spec.name).exists():
                results.append((spec.name, False))
                continue
            PeriodicTask.objects.create(
                name=spec.name,
                task=spec.task,
                description=spec.description,
                args=json.dumps([]),
                queue="default",
                enabled=True,
                **_schedule_fields(spec),
            )
            results.append((spec.name, True))
    return results
