"""`python manage.py pge_check`: what PG&E's registration asks, as a pass/fail table
(gascap/pge/readiness.py); exit status 1 when a check fails. README, "Going live with PG&E"."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from gascap.pge.readiness import registration_checks
from gascap.pge_settings import pge_client


class Command(BaseCommand):
    help = (
        "Check the PG&E registration: client certificate expiry, client credentials on the "
        "test and the real token URL, ReadServiceStatus and the consent page URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-consent-fetch",
            action="store_true",
            help="only check that the consent page URL is well-formed; do not GET it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = pge_client()
        config = client.config
        verbosity = options["verbosity"]
        if verbosity >= 1:
            self.stdout.write(f"PG&E environment: {settings.GASCAP_PGE_ENVIRONMENT}")
            self.stdout.write(f"  API base:     {config.api_base}")
            self.stdout.write(f"  token URL:    {config.token_url}")
            self.stdout.write(f"  test token:   {config.test_token_url or '-'}")
            self.stdout.write(f"  consent page: {config.authorize_url}")
            self.stdout.write(f"  redirect URI: {config.redirect_uri}")
        results = registration_checks(
            client=client,
            now=timezone.now(),
            warn_days=settings.GASCAP_PGE_CERT_WARN_DAYS,
            fetch_consent_page=not options["no_consent_fetch"],
        )
        width = max(len(r.name) for r in results)
        if verbosity >= 1:
            self.stdout.write("")
        for result in results:
            if verbosity == 0 and result.status == "PASS":
                continue  # -v 0: only what needs attention
            line = f"{result.status:<4}  {result.name:<{width}}  {result.detail}"
            style = {"PASS": self.style.SUCCESS, "WARN": self.style.WARNING}.get(
                result.status, self.style.ERROR
            )
            self.stdout.write(style(line))
        failed = [r.name for r in results if r.failed]
        if failed:
            raise CommandError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
        if verbosity >= 1:
            self.stdout.write(self.style.SUCCESS("All PG&E registration checks passed."))
