"""`manage.py sandbox_consent <authorize-url> [--customer electric] [--deny]`: answer the
sandbox consent page without a browser and print the callback URL to visit next."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.config import sandbox_config
from sandbox.demo import DEMO_CUSTOMERS
from sandbox.drive import ConsentRefused, consent_decide


class Command(BaseCommand):
    help = "Approve (or deny) consent on the sandbox page; prints the redirect URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("authorize_url", help="the consent URL gascap redirected to")
        parser.add_argument(
            "--customer", default="electric", choices=[c.key for c in DEMO_CUSTOMERS]
        )
        parser.add_argument("--deny", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        ca = str(sandbox_config().cert_dir / "ca.pem")
        try:
            target = consent_decide(
                authorize_url=options["authorize_url"],
                customer=options["customer"],
                decision="deny" if options["deny"] else "approve",
                ca_bundle=ca,
            )
        except ConsentRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(target)
