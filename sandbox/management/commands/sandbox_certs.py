"""`manage.py sandbox_certs [--dir var/certs] [--force]`: the sandbox's local CA, server and
client certificates (idempotent; key files mode 0600)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sandbox.certs import certs_ensure
from sandbox.config import sandbox_config


class Command(BaseCommand):
    help = "Create the sandbox CA, server certificate and gascap client certificate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", default=None, help="target directory (default var/certs)")
        parser.add_argument("--force", action="store_true", help="replace existing files")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["dir"]) if options["dir"] else sandbox_config().cert_dir
        paths, created = certs_ensure(directory=directory, force=options["force"])
        verb = "Created" if created else "Kept existing"
        if options["verbosity"] >= 1:
            self.stdout.write(f"{verb} sandbox certificates in {paths.directory}")
        for path in paths.all() if options["verbosity"] >= 2 else ():
            self.stdout.write(f"  {path.name}")
