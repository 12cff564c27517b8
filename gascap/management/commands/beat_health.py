"""`manage.py beat_health`: beat's container health check. Exits 0 when beat's heartbeat is
fresh and every schedule exists; otherwise prints what is wrong and exits 1."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from gascap.beat import beat_problems


class Command(BaseCommand):
    help = "Check that celery beat is ticking and that every periodic schedule exists."
    # A health check runs every few seconds: skip the system checks.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        problems = beat_problems(now=time.time())
        if problems:
            raise CommandError("beat unhealthy: " + "; ".join(problems))
        self.stdout.write("beat ok")
