"""`manage.py ensure_schedules`: create the periodic schedules that are missing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from gascap.schedules import schedules_ensure


class Command(BaseCommand):
    help = "Create the django-celery-beat schedules gascap needs (existing ones are kept)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, created in schedules_ensure():
            if options["verbosity"] >= 1:
                self.stdout.write(f"{'created' if created else 'kept   '} {name}")
