"""`python manage.py api_key_create NAME [--scope read,consent]`: the key on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from api.keys import ApiKeyInvalid, api_key_create, scopes_parse


class Command(BaseCommand):
    help = "Create an API key for the company's app; prints the key once, on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="what the key is for, e.g. 'mobile-app backend'")
        parser.add_argument(
            "--scope", default="read", help="comma-separated: read, consent (default: read)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key, plaintext = api_key_create(
                name=options["name"], scopes=scopes_parse(options["scope"]), now=timezone.now()
            )
        except ApiKeyInvalid as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Created API key {key.name!r} (scopes: {key.scopes}); it is not shown again:"
        )
        self.stdout.write(plaintext)
