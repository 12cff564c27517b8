"""ops' Celery task: the periodic alert check (a thin wrapper over `ops.alerts`)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="ops.alerts_check")
def alerts_check() -> dict[str, list[str]]:
    from ops.alerts import alerts_check as check

    return {"sent": check(now=timezone.now())}
