"""`manage.py export_readings --format csv [--usage-point ID] [--start ISO] [--end ISO]`:
stored readings as CSV on stdout (or `--output FILE`), see `ingest.readings_export`."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest.readings_export import CSV_HEADER, readings_export_rows


def _moment(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: not an ISO 8601 date or time: {text!r}") from None
    # A time without offset is UTC, like everything stored.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Export stored interval readings (CSV), ordered by usage point, meter reading, start."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv"], default="csv")
        parser.add_argument("--usage-point", dest="usage_point", help="usage point id")
        parser.add_argument("--start", help="first start included (ISO 8601, UTC if no offset)")
        parser.add_argument("--end", help="starts before this are included (ISO 8601)")
        parser.add_argument("--output", help="write to this file instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        start = _moment(options["start"], "--start")
        end = _moment(options["end"], "--end")
        rows = readings_export_rows(usage_point_id=options["usage_point"], start=start, end=end)
        if options["output"]:
            with open(options["output"], "w", newline="", encoding="utf-8") as handle:
                self._write(handle, rows)
        else:
            self._write(self.stdout, rows)

    @staticmethod
    def _write(handle: Any, rows: Any) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(rows)
