"""Send the smoke task through the broker (to see a worker pick it up)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand

from gascap.tasks import smoke


class Command(BaseCommand):
    help = "Publish gascap.smoke with a fresh marker and print the marker."

    def handle(self, *args: Any, **options: Any) -> None:
        marker = uuid.uuid4().hex
        smoke.delay(marker)
        if options["verbosity"] >= 1:
            self.stdout.write(f"sent smoke task {marker}")
