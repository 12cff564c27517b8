"""`manage.py request_data --subscription SID --start DATE --end DATE [--sync]`.

Without --sync: PG&E's asynchronous Subscription request (202; the notification follows).
With --sync: one synchronous UsagePoint fetch per usage point of the subscription and window
(at most ~30 days each), queued on `pge_fetch` like any other fetch; `--now` runs them here.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date

from customers.models import Authorization
from customers.tokens import AuthorizationUnavailable
from ingest import data_requests, fetches, gap_audit, publish, selectors


def _local_midnight(value: str) -> datetime:
    day = parse_date(value)
    if day is None:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}")
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE))


class Command(BaseCommand):
    help = "Ask PG&E for a subscription's data over [start, end] (local days)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--subscription", required=True)
        parser.add_argument("--start", required=True, help="first local day, YYYY-MM-DD")
        parser.add_argument("--end", required=True, help="last local day, YYYY-MM-DD")
        parser.add_argument("--sync", action="store_true", help="synchronous UsagePoint fetches")
        parser.add_argument(
            "--now", action="store_true", help="with --sync: run the fetches in this process"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sid = options["subscription"]
        start = _local_midnight(options["start"])
        end = _local_midnight(options["end"]) + timedelta(days=1)
        if end <= start:
            raise CommandError("--end must not be before --start")
        authorization = Authorization.objects.filter(subscription_id=sid).first()
        if authorization is None:
            raise CommandError(f"unknown subscription {sid}")
        now = timezone.now()
        if not options["sync"]:
            try:
                report = data_requests.subscription_data_request(
                    authorization_id=authorization.pk, now=now, start=start, end=end
                )
            except AuthorizationUnavailable as exc:
                raise CommandError(f"subscription {sid} unavailable: {exc.reason}") from None
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"asked PG&E for {len(report.windows)} window(s); statuses {report.statuses}"
                )
            return
        usage_points = list(authorization.usage_points.values_list("usage_point_id", flat=True))
        usage_points += selectors.subscription_usage_point_ids(subscription_id=sid)
        usage_points = sorted(set(usage_points))
        if not usage_points:
            raise CommandError(f"no usage point known for subscription {sid}")
        created = []
        for upid in usage_points:
            created += gap_audit.usage_point_fetches_create(
                subscription_id=sid, usage_point_id=upid, start=start, end=end, now=now
            )
        for fetch in created:
            if options["now"]:
                result = fetches.fetch_run(fetch_id=fetch.pk, now=timezone.now())
                if options["verbosity"] >= 1:
                    self.stdout.write(f"fetch {fetch.pk}: {result.status} {result.reason}".rstrip())
            else:
                publish.fetch_enqueue(fetch_id=fetch.pk)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"{len(created)} synchronous fetch(es) for {len(usage_points)} usage point(s)"
            )
