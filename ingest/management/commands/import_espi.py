"""`manage.py import_espi FILE [FILE…]`: import ESPI documents through the same service the
notification pipeline uses (`ingest.readings.document_import`), one transaction per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ingest.readings import EspiRejected, document_import


class Command(BaseCommand):
    help = "Import ESPI (Green Button) documents: one summary line per file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        failed: list[str] = []
        for path in options["files"]:
            label = f"file:{path.name}"
            try:
                result = document_import(source=str(path), source_label=label, now=timezone.now())
            except EspiRejected as exc:
                # Rolled back: nothing from this file is stored. The message says where and why.
                self.stderr.write(f"{path}: rejected ({exc.reason}): {exc}")
                failed.append(str(path))
                continue
            except OSError as exc:
                self.stderr.write(f"{path}: cannot read: {exc.strerror or exc}")
                failed.append(str(path))
                continue
            self.stdout.write(f"{path}: {result.summary_line()}")
            if result.missing_reading_types:
                self.stdout.write(
                    f"{path}: units unknown until these ReadingTypes are fetched: "
                    + ", ".join(result.missing_reading_types)
                )
        if failed:
            raise CommandError(f"{len(failed)} of {len(options['files'])} file(s) not imported")
