"""`python manage.py webhook_endpoint_add URL [--events a,b]`: the secret on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from webhooks.endpoints import EndpointInvalid, endpoint_create
from webhooks.models import EVENT_TYPES


class Command(BaseCommand):
    help = "Add a webhook endpoint; prints its signing secret (whsec_...) once, on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("url")
        parser.add_argument(
            "--events",
            default="",
            help=f"comma-separated event types (default: all of {', '.join(EVENT_TYPES)})",
        )
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            endpoint, secret = endpoint_create(
                url=options["url"],
                event_types=options["events"].split(","),
                description=options["description"],
                now=timezone.now(),
            )
        except EndpointInvalid as exc:
            raise CommandError(str(exc)) from exc
        types = ", ".join(endpoint.event_types) or "all events"
        self.stdout.write(f"Webhook endpoint {endpoint.pk} for {endpoint.url} ({types}).")
        self.stdout.write("Signing secret (shown once; verify webhook-signature with it):")
        self.stdout.write(secret)
