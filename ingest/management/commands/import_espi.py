"""`manage.py import_espi FILE [FILE…]`: import ESPI documents through the same service the
notification pipeline uses (`ingest.readings.document_import`), one transaction per file.

On a terminal each file shows its progress while it parses (bytes, readings seen, bytes/s and
an ETA from the file size), rewritten in place; otherwise (a pipe, a log) one line per file.
-v 0 prints only errors, -v 1 the summary line per file, -v 2 also its size, time and speed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils import timezone

from ingest.readings import EspiRejected, document_import

_MARK = b"IntervalReading>"  # opening and closing tag both end with it, whatever the prefix


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


class ProgressReader:
    """A binary file that reports how far the parser has read it, at most every `interval`."""

    def __init__(
        self, handle: IO[bytes], *, total: int, out: OutputWrapper, name: str, interval: float
    ) -> None:
        self.handle = handle
        self.total = total
        self.out = out
        self.name = name
        self.interval = interval
        self.done = 0
        self.marks = 0
        self._tail = b""
        self.started = time.monotonic()
        self._last = 0.0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.done += len(data)
        window = self._tail + data
        self.marks += window.count(_MARK) - self._tail.count(_MARK)
        self._tail = window[-(len(_MARK) - 1) :]
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.report()
        return data

    def report(self, *, final: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        percent = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate and self.total > self.done else 0.0
        line = (
            f"\r{self.name}: {percent:5.1f}% {_size(self.done)} of {_size(self.total)} · "
            f"~{self.marks // 2:,} readings · {_size(rate)}/s · ETA {left:.0f} s"
        )
        self.out.write(line, ending="\n" if final else "")
        self.out.flush()


class Command(BaseCommand):
    help = "Import ESPI (Green Button) documents: progress on a terminal, one line per file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def _import(self, path: Path, *, verbosity: int) -> Any:
        label = f"file:{path.name}"
        on_terminal = verbosity >= 1 and self.stdout.isatty()
        with open(path, "rb") as handle:
            if not on_terminal:
                return document_import(source=handle, source_label=label, now=timezone.now())
            total = path.stat().st_size
            reader = ProgressReader(
                handle, total=total, out=self.stdout, name=str(path), interval=0.25
            )
            result = document_import(source=reader, source_label=label, now=timezone.now())  # type: ignore[arg-type]
            reader.report(final=True)
            return result

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        failed: list[str] = []
        for path in options["files"]:
            started = time.monotonic()
            try:
                result = self._import(path, verbosity=verbosity)
            except EspiRejected as exc:
                # Rolled back: nothing from this file is stored. The message says where and why.
                self.stderr.write(f"{path}: rejected ({exc.reason}): {exc}")
                failed.append(str(path))
                continue
            except OSError as exc:
                self.stderr.write(f"{path}: cannot read: {exc.strerror or exc}")
                failed.append(str(path))
                continue
            if verbosity >= 1:
                self.stdout.write(f"{path}: {result.summary_line()}")
            if verbosity >= 1 and result.missing_reading_types:
                self.stdout.write(
                    f"{path}: units unknown until these ReadingTypes are fetched: "
                    + ", ".join(result.missing_reading_types)
                )
            if verbosity >= 2:
                elapsed = max(time.monotonic() - started, 1e-6)
                size = path.stat().st_size
                self.stdout.write(
                    f"{path}: {_size(size)} in {elapsed:.2f} s ({_size(size / elapsed)}/s)"
                )
        if failed:
            raise CommandError(f"{len(failed)} of {len(options['files'])} file(s) not imported")
