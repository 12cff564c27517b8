"""`manage.py ingest_replay`: re-queue failed work (never runs it inline).

ingest_replay --status FAILED [--since 2026-03-01] [--what fetches|notifications|both]
ingest_replay --ids 12 13 14 [--what notifications]
ingest_replay --status POISONED --what data_requests
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ingest.models import DataRequest, Fetch, Notification
from ingest.replay import data_requests_replay, fetches_replay, notifications_replay


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: not a date: {value!r}")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


class Command(BaseCommand):
    help = "Re-queue FAILED/POISONED fetches, notifications or data requests (by status or id)."

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--status", choices=["FAILED", "POISONED", "REJECTED"])
        group.add_argument("--ids", nargs="+", type=int)
        parser.add_argument("--since", help="only rows created on/after this date (ISO)")
        parser.add_argument(
            "--what",
            choices=["fetches", "notifications", "both", "data_requests"],
            default="fetches",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _since(options.get("since"))
        what = options["what"]
        total = 0
        if what in ("fetches", "both"):
            fetch_ids = options["ids"] or self._fetch_ids(options["status"], since)
            count = fetches_replay(fetch_ids=fetch_ids)
            self._say(options, f"re-queued {count} fetch(es)")
            total += count
        if what in ("notifications", "both"):
            ids = options["ids"] or self._notification_ids(options["status"], since)
            count = notifications_replay(notification_ids=ids)
            self._say(options, f"re-queued {count} notification(s)")
            total += count
        if what == "data_requests":
            ids = options["ids"] or self._data_request_ids(options["status"], since)
            count = data_requests_replay(data_request_ids=ids)
            self._say(options, f"re-queued {count} data request(s)")
            total += count
        if not total:
            self._say(options, "nothing to replay")

    def _say(self, options: dict[str, Any], text: str) -> None:
        if options["verbosity"] >= 1:
            self.stdout.write(text)

    def _fetch_ids(self, status: str, since: datetime | None) -> list[int]:
        rows = Fetch.objects.filter(status=status)
        if since:
            rows = rows.filter(created_at__gte=since)
        return list(rows.values_list("pk", flat=True))

    def _notification_ids(self, status: str, since: datetime | None) -> list[int]:
        rows = Notification.objects.filter(status=status)
        if since:
            rows = rows.filter(received_at__gte=since)
        return list(rows.values_list("pk", flat=True))

    def _data_request_ids(self, status: str, since: datetime | None) -> list[int]:
        rows = DataRequest.objects.filter(status=status)
        if since:
            rows = rows.filter(created_at__gte=since)
        return list(rows.values_list("pk", flat=True))
