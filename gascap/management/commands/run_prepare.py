"""Everything `make run` needs before its processes start: sandbox certificates (when the
sandbox is installed) and the beat schedules. Idempotent."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare a development run: sandbox certificates and periodic schedules."

    def handle(self, *args: Any, **options: Any) -> None:
        commands = get_commands()
        if apps.is_installed("sandbox") and "sandbox_certs" in commands:
            call_command("sandbox_certs")
        if "ensure_schedules" in commands:
            call_command("ensure_schedules")
