"""The figures operators look at first, for the admin index (the dashboard) and
`manage.py status`: the last 7 days of notifications, fetches and readings, consents and those
needing attention, PG&E calls against the caps, queue depths, the last daily request and the
client certificate's days left.

Every figure is a count over an indexed column or a small table: no aggregate over the
readings (the newest reading per usage point is one index lookup per series), so the page
stays fast however many readings are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery

DAYS = 7


@dataclass
class Dashboard:
    now: datetime
    since: datetime
    notifications: dict[str, int]
    fetches: dict[str, int]
    readings_per_day: list[tuple[date, int]]
    consents: dict[str, int]
    attention: dict[str, list[Any]]
    pge_calls_hour: int
    pge_calls_day: int
    pge_hour_cap: int
    pge_day_cap: int
    queues: dict[str, int] | None
    last_daily_request: datetime | None
    last_notification: datetime | None
    certificate_days_left: int | None
    certificate_problem: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)


def _by_status(queryset: Any, choices: Any) -> dict[str, int]:
    counts = dict(queryset.order_by().values_list("status").annotate(n=Count("pk")))
    return {value: counts.get(value, 0) for value in choices.values}


def readings_per_day(*, now: datetime, days: int = DAYS) -> list[tuple[date, int]]:
    """Readings written (new + updated) by fetches finished on each local day: read from the
    fetch rows, which record their counts, not from the readings."""
    from ingest.models import Fetch

    zone = _zone()
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    totals: dict[date, int] = {first + timedelta(days=i): 0 for i in range(days)}
    rows = Fetch.objects.filter(finished_at__gte=start).values_list(
        "finished_at", "readings_new", "readings_updated"
    )
    for finished, new, updated in rows.iterator():
        day = finished.astimezone(zone).date()
        if day in totals:
            totals[day] += new + updated
    return sorted(totals.items())


def consents_needing_attention(*, now: datetime) -> dict[str, list[Any]]:
    """Consents to act on: needing re-consent, refresh failing (an error in the last 7 days on
    an active consent), and active consents with no reading newer than 3 days."""
    from customers.models import Authorization, AuthorizationStatus
    from ingest.models import IntervalReading, MeterReading

    status = AuthorizationStatus
    reconsent = list(
        Authorization.objects.filter(status=status.NEEDS_RECONSENT).select_related("customer")[:20]
    )
    failing = list(
        Authorization.objects.filter(
            status=status.ACTIVE, last_error_at__gte=now - timedelta(days=DAYS)
        )
        .exclude(last_error="")
        .select_related("customer")[:20]
    )
    newest = IntervalReading.objects.filter(meter_reading=OuterRef("pk")).order_by("-start")
    series = MeterReading.objects.annotate(last=Subquery(newest.values("start")[:1]))
    newest_by_subscription: dict[str, datetime] = {}
    # By the consent each usage point is bound to (docs/espi.md), not by its href.
    for sid, last in series.values_list("usage_point__authorization__subscription_id", "last"):
        if last is None or not sid:
            continue
        if sid not in newest_by_subscription or last > newest_by_subscription[sid]:
            newest_by_subscription[sid] = last
    stale_before = now - timedelta(days=3)
    stale = [
        a
        for a in Authorization.objects.filter(
            status=status.ACTIVE, created_at__lt=stale_before
        ).select_related("customer")[:500]
        if newest_by_subscription.get(a.subscription_id or "", stale_before) <= stale_before
    ][:20]
    return {"needs_reconsent": reconsent, "refresh_failing": failing, "no_data_3_days": stale}


def pge_calls(*, now: datetime) -> tuple[int, int]:
    """(calls this hour, calls this PG&E day), every kind, from the PG&E call budget."""
    from gascap.pge_budget.budget import budget_usage

    usage = budget_usage(now=now)
    return usage.hour_total, usage.day_total


def last_daily_request() -> datetime | None:
    """When beat last sent the daily data request (django-celery-beat's record)."""
    from django_celery_beat.models import PeriodicTask

    return (
        PeriodicTask.objects.filter(task="ingest.daily_data_request")
        .exclude(last_run_at=None)
        .order_by("-last_run_at")
        .values_list("last_run_at", flat=True)
        .first()
    )


def certificate_days(*, now: datetime) -> tuple[int | None, str]:
    from gascap.pge.certificates import CertificateUnreadable, certificate_days_left

    path = settings.GASCAP_PGE_CLIENT_CERT
    if not path:
        return None, "GASCAP_PGE_CLIENT_CERT is not set"
    try:
        return certificate_days_left(path, now=now), ""
    except CertificateUnreadable as exc:
        return None, str(exc)


def dashboard_figures(*, now: datetime, with_queues: bool = True) -> Dashboard:
    from customers.models import Authorization, AuthorizationStatus
    from ingest.models import Fetch, Notification
    from ops.alerts import pge_day_calls
    from ops.gauges import queue_depths

    since = now - timedelta(days=DAYS)
    hour, _ = pge_calls(now=now)
    day, day_cap = pge_day_calls(now=now)
    days_left, problem = certificate_days(now=now)
    per_day = readings_per_day(now=now)
    return Dashboard(
        now=now,
        since=since,
        notifications=_by_status(
            Notification.objects.filter(received_at__gte=since), Notification.Status
        ),
        fetches=_by_status(Fetch.objects.filter(created_at__gte=since), Fetch.Status),
        readings_per_day=per_day,
        consents=_by_status(Authorization.objects.all(), AuthorizationStatus),
        attention=consents_needing_attention(now=now),
        pge_calls_hour=hour,
        pge_calls_day=day,
        pge_hour_cap=int(settings.GASCAP_PGE_BUDGET_PER_HOUR),
        pge_day_cap=day_cap,
        queues=queue_depths() if with_queues else None,
        last_daily_request=last_daily_request(),
        last_notification=Notification.objects.exclude(status=Notification.Status.REJECTED)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first(),
        certificate_days_left=days_left,
        certificate_problem=problem,
        extra={"readings_total_7d": sum(n for _, n in per_day)},
    )


__all__ = ["Dashboard", "dashboard_figures", "readings_per_day"]
