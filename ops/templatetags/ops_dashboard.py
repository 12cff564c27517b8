"""`{% ops_dashboard as dash %}`: the admin index's figures (ops.dashboard), each with the URL of
the filtered admin list behind it, and the readings-per-day chart as server-drawn SVG."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from ops.charts import bars_svg
from ops.dashboard import dashboard_figures

register = template.Library()


def _list(name: str, **params: object) -> str:
    try:
        url = reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(params)}" if params else url


def _rows(counts: dict[str, int], name: str, **params: object) -> list[dict[str, Any]]:
    return [
        {
            "label": status.lower().replace("_", " "),
            "value": n,
            "url": _list(name, status__exact=status, **params),
            "bad": status in ("FAILED", "POISONED", "REJECTED", "NEEDS_RECONSENT") and n > 0,
        }
        for status, n in counts.items()
    ]


def _midnight(day: date) -> str:
    zone = timezone.get_current_timezone()
    return datetime(day.year, day.month, day.day, tzinfo=zone).isoformat()


@register.simple_tag
def ops_dashboard() -> dict[str, Any]:
    now = timezone.now()
    figures = dashboard_figures(now=now)
    # Aware instants in the links: the admin filters parse them without a naive warning.
    since_day = timezone.localtime(figures.since).replace(microsecond=0).isoformat()
    auth_change = "admin:customers_authorization_change"
    attention = [
        {
            "label": key.replace("_", " "),
            "rows": [
                {
                    "text": f"{a.customer} ({a.subscription_id or '-'})",
                    "url": reverse(auth_change, args=[a.pk]),
                }
                for a in rows
            ],
        }
        for key, rows in figures.attention.items()
    ]
    per_day = figures.readings_per_day
    return {
        "figures": figures,
        # The same window as the system check, the banner and the alert.
        "certificate_warn_days": int(settings.GASCAP_PGE_CERT_WARN_DAYS),
        "notifications": _rows(
            figures.notifications, "ingest_notification", received_at__gte=since_day
        ),
        "fetches": _rows(figures.fetches, "ingest_fetch", created_at__gte=since_day),
        "consents": _rows(figures.consents, "customers_authorization"),
        "attention": attention,
        "readings_chart": mark_safe(  # noqa: S308 - every label in it is escaped by bars_svg
            bars_svg(
                [
                    (
                        f"{day:%a %m-%d}",
                        float(n),
                        _list(
                            "ingest_fetch",
                            finished_at__gte=_midnight(day),
                            finished_at__lt=_midnight(day + timedelta(days=1)),
                        ),
                    )
                    for day, n in per_day
                ]
            )
        ),
        "readings_total": figures.extra["readings_total_7d"],
        "fetches_url": _list("ingest_fetch", created_at__gte=_midnight(timezone.localdate(now))),
        "schedules_url": _list("django_celery_beat_periodictask", task="ingest.daily_data_request"),
        "notifications_url": _list("ingest_notification"),
        "hour_percent": 100 * figures.pge_calls_hour // max(figures.pge_hour_cap, 1),
        "day_percent": 100 * figures.pge_calls_day // max(figures.pge_day_cap, 1),
    }
