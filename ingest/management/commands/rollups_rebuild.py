"""`python manage.py rollups_rebuild [--series ID ...]`: recompute the daily and monthly
rollups from the readings (after a restore, or to check nothing drifted)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ingest.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute the daily and monthly rollups of every series (or of --series) from readings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--series", type=int, nargs="*", help="MeterReading ids (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        count = rollups_rebuild(series_ids=options["series"] or None)
        self.stdout.write(f"Rebuilt the rollups of {count} series.")
