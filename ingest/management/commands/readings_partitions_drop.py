"""`python manage.py readings_partitions_drop [--keep-months N] [--commit]`: detach and drop
the monthly readings partitions past retention (PostgreSQL; docs/operators.md).

A dry run by default: it prints what it would drop. The retention is `--keep-months` or
`GASCAP_READINGS_RETENTION_MONTHS` (months kept before the current one); unset: nothing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from ingest.partitions import MIN_KEEP_MONTHS, is_partitioned, months_drop


class Command(BaseCommand):
    help = "Drop monthly readings partitions past retention (dry run unless --commit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep-months",
            type=int,
            default=None,
            help="Months kept before the current one (default GASCAP_READINGS_RETENTION_MONTHS).",
        )
        parser.add_argument("--commit", action="store_true", help="Drop them (default: dry run).")

    def handle(self, *args: Any, **options: Any) -> None:
        keep = options["keep_months"]
        if keep is None:
            keep = settings.GASCAP_READINGS_RETENTION_MONTHS
        if keep is None:
            self.stdout.write("No retention: GASCAP_READINGS_RETENTION_MONTHS is unset.")
            return
        if keep < MIN_KEEP_MONTHS:
            raise CommandError(f"--keep-months must be at least {MIN_KEEP_MONTHS}")
        if not is_partitioned(connection):
            self.stdout.write("Readings are not partitioned here (PostgreSQL only): nothing.")
            return
        commit = options["commit"]
        drops = months_drop(keep_months=keep, now=timezone.now(), commit=commit)
        verb = "Dropped" if commit else "Would drop"
        for drop in drops:
            revisions = "" if drop.revisions is None else f", {drop.revisions} revisions deleted"
            self.stdout.write(
                f"{verb} {drop.name} ({drop.month:%Y-%m}, ~{drop.readings_estimate} readings,"
                f" {drop.bytes} bytes{revisions})"
            )
        if not drops:
            self.stdout.write(f"No month older than the {keep} kept before this one.")
        elif not commit:
            self.stdout.write("Dry run: nothing dropped (--commit drops them).")
