"""Create the first operator account if none exists (used by `make run`).

Credentials come from GASCAP_ADMIN_USERNAME / GASCAP_ADMIN_PASSWORD; without a password one
is generated and printed once, never stored anywhere but in the password hash.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first superuser when the database has none."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            if options["verbosity"] >= 1:
                self.stdout.write("An operator account already exists.")
            return
        username = os.environ.get("GASCAP_ADMIN_USERNAME", "admin")
        password = os.environ.get("GASCAP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("GASCAP_ADMIN_PASSWORD"):
            if options["verbosity"] >= 1:
                self.stdout.write(f"Created operator '{username}' with GASCAP_ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"Created operator '{username}' with password {password} "
                    "(shown once: note it now)."
                )
            )
