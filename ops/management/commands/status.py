"""`manage.py status`: the dashboard on one screen for shell operators (ops.dashboard).

-v 0 prints nothing and exits 1 when something needs an operator (consents to re-consent or
with failing refreshes, failed or poisoned work in the last 7 days, the certificate within its
warning days), 0 otherwise: usable from cron or a monitoring probe. -v 1 (default) prints the
summary; -v 2 adds the consents needing attention by name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from ops.dashboard import Dashboard, dashboard_figures


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    zone = ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)
    return timezone.localtime(moment, zone).strftime("%Y-%m-%d %H:%M %Z")


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{status.lower().replace('_', ' ')} {n}" for status, n in counts.items() if n]
    return " · ".join(shown) or "none"


def needs_operator(figures: Dashboard) -> list[str]:
    """What an operator must act on, in words (empty: nothing)."""
    problems: list[str] = []
    for key, rows in figures.attention.items():
        if rows and key != "no_data_3_days":
            problems.append(f"{len(rows)} consent(s) {key.replace('_', ' ')}")
    bad = figures.fetches.get("FAILED", 0) + figures.fetches.get("POISONED", 0)
    bad += figures.notifications.get("FAILED", 0) + figures.notifications.get("POISONED", 0)
    if bad:
        problems.append(f"{bad} failed or poisoned row(s) in 7 days")
    days = figures.certificate_days_left
    if days is not None and days < int(settings.GASCAP_PGE_CERT_WARN_DAYS):
        problems.append(f"client certificate: {days} day(s) left")
    return problems


class Command(BaseCommand):
    help = "One-screen summary of gascap's last 7 days (exit 1 at -v 0 when action is needed)."

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        figures = dashboard_figures(now=timezone.now())
        problems = needs_operator(figures)
        if verbosity == 0:
            if problems:
                raise SystemExit(1)
            return
        out = self.stdout.write
        out(f"gascap status at {_local(figures.now)} (last 7 days)")
        out(f"notifications  {_counts(figures.notifications)}")
        out(f"fetches        {_counts(figures.fetches)}")
        per_day = "  ".join(f"{d:%m-%d} {n}" for d, n in figures.readings_per_day)
        out(f"readings/day   {per_day}  (total {figures.extra['readings_total_7d']})")
        out(f"consents       {_counts(figures.consents)}")
        attention = " · ".join(
            f"{key.replace('_', ' ')} {len(rows)}" for key, rows in figures.attention.items()
        )
        out(f"attention      {attention}")
        out(
            f"PG&E calls     this hour {figures.pge_calls_hour}/{figures.pge_hour_cap} · "
            f"this PG&E day {figures.pge_calls_day}/{figures.pge_day_cap} (all kinds: pge_budget)"
        )
        queues = (
            "broker not answering"
            if figures.queues is None
            else " · ".join(f"{q} {n}" for q, n in figures.queues.items())
        )
        out(f"queues         {queues}")
        out(
            f"daily request  last sent {_local(figures.last_daily_request)} · "
            f"last notification {_local(figures.last_notification)}"
        )
        certificate = (
            f"{figures.certificate_days_left} day(s) left"
            if figures.certificate_days_left is not None
            else figures.certificate_problem
        )
        out(f"certificate    {certificate}")
        if problems:
            out(self.style.WARNING("needs action   " + "; ".join(problems)))
        else:
            out(self.style.SUCCESS("needs action   nothing"))
        if verbosity >= 2:
            for key, rows in figures.attention.items():
                for authorization in rows:
                    out(
                        f"  {key.replace('_', ' ')}: {authorization.customer} "
                        f"(subscription {authorization.subscription_id}) "
                        f"{authorization.last_error[:120]}"
                    )
