"""`python manage.py pge_budget`: PG&E calls used this hour and this PG&E day (which resets at
5 p.m. Pacific) by kind, the work waiting for the budget, and the projected daily calls of the
active consents in each data-request mode."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from customers.selectors import active_authorizations
from gascap.pge.gate import CallKind, Priority
from gascap.pge_budget.budget import PGE_DAY_ZONE, budget_usage
from ingest.budget_plan import daily_calls_projection, daily_request_mode


class Command(BaseCommand):
    help = "Show the PG&E call budget: calls used by kind, waiting work, projected daily calls."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        usage = budget_usage(now=now)
        caps = usage.caps
        out = self.stdout.write
        out(f"hour  {usage.hour.start:%Y-%m-%d %H:%M}Z .. {usage.hour.end:%H:%M}Z")
        day_start, day_end = (t.astimezone(PGE_DAY_ZONE) for t in (usage.day.start, usage.day.end))
        out(f"PG&E day  {day_start.isoformat()} .. {day_end.isoformat()} (resets 5 p.m. Pacific)")
        out(f"{'kind':<22}{'this hour':>10}{'this day':>10}")
        for kind in CallKind:
            out(
                f"{kind.value:<22}{usage.hour_calls.get(kind.value, 0):>10}"
                f"{usage.day_calls.get(kind.value, 0):>10}"
            )
        out(f"{'total':<22}{usage.hour_total:>10}{usage.day_total:>10}")
        out(f"{'cap':<22}{caps.per_hour:>10}{caps.per_day:>10}")
        for priority in Priority:
            hour_cap, day_cap = caps.for_priority(priority)
            out(f"  usable by {priority.name.lower():<10}{hour_cap:>10}{day_cap:>10}")
        for field, count in sorted(usage.hour_calls.items()):
            if field.startswith("status_"):
                out(f"answers {field[7:]} this hour: {count}")
        if usage.waits:
            for work, count in sorted(usage.waits.items()):
                out(f"waited for the budget today: {work} x{count}")
        else:
            out("waited for the budget today: nothing")
        consents = active_authorizations().count()
        projection = daily_calls_projection(consents=consents)
        out(f"active consents: {consents}")
        out(f"projected calls/day  subscription: {projection.subscription_calls}")
        out(f"projected calls/day  bulk:         {projection.bulk_calls}")
        out(
            f"auto picks: {projection.auto_mode} (per-subscription while <= "
            f"{projection.subscription_share_cap} calls/day); today's mode: "
            f"{daily_request_mode(consents=consents)}"
        )
