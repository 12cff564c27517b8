"""System checks for configuration an operator can get wrong."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.utils import timezone

from gascap.certificate_expiry import client_certificate_warning


@checks.register(checks.Tags.security, deploy=True)
def check_admin_path(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The operators' admin holds every customer's data: keep it off the default path."""
    if settings.GASCAP_ADMIN_PATH.strip("/") == "admin":
        return [
            checks.Warning(
                "The admin is served at /admin/.",
                hint="Set GASCAP_ADMIN_PATH to a path of your own in production.",
                id="gascap.W001",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_celery_time_limits(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A task running past Redis's visibility timeout is delivered to a second worker."""
    limit = settings.CELERY_TASK_TIME_LIMIT
    if limit >= settings.CELERY_VISIBILITY_TIMEOUT:
        return [
            checks.Error(
                f"CELERY task time limit ({limit}s) is not below the broker visibility "
                f"timeout ({settings.CELERY_VISIBILITY_TIMEOUT}s).",
                id="gascap.E001",
            )
        ]
    return []


@checks.register(checks.Tags.security)
def check_pge_client_certificate(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """PG&E refuses every call once the client certificate expires: warn ahead of it."""
    warning = client_certificate_warning(now=timezone.now())
    if warning is None:
        return []
    return [
        checks.Warning(
            warning,
            hint="Run `python manage.py pge_check` after installing the new certificate.",
            id="gascap.W002",
        )
    ]


@checks.register(checks.Tags.database)
def check_beat_schedules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every periodic schedule has a row (`manage.py check --database default`; `migrate`
    runs it before migrating, then creates what is missing)."""
    from gascap.beat import schedule_tables_exist, schedules_missing

    problems: list[checks.CheckMessage] = []
    for alias in kwargs.get("databases") or []:
        if alias != "default" or not schedule_tables_exist(using=alias):
            continue
        missing = schedules_missing(using=alias)
        if missing:
            problems.append(
                checks.Warning(
                    f"Beat schedules missing: {', '.join(missing)}.",
                    hint="Run `manage.py migrate` (it creates them) or `manage.py "
                    "ensure_schedules`.",
                    id="gascap.W010",
                )
            )
    return problems


@checks.register()
def check_worker_heartbeat(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A dead worker's rows are taken over within two sweep periods only if a heartbeat goes
    stale (STALE) well before the next sweep, and a live one beats several times per STALE."""
    interval = float(settings.GASCAP_WORKER_HEARTBEAT_INTERVAL)
    stale = float(settings.GASCAP_WORKER_HEARTBEAT_STALE)
    period = float(settings.GASCAP_INGEST_SWEEP_PERIOD)
    if not (0 < interval * 2 <= stale < period):
        return [
            checks.Error(
                f"Worker heartbeat settings out of order: interval {interval}s, stale after "
                f"{stale}s, sweep every {period}s.",
                hint="Keep GASCAP_WORKER_HEARTBEAT_INTERVAL * 2 <= GASCAP_WORKER_HEARTBEAT_STALE"
                " < GASCAP_INGEST_SWEEP_PERIOD.",
                id="gascap.E002",
            )
        ]
    return []
