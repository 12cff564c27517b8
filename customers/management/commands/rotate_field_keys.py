"""`manage.py rotate_field_keys`: re-encrypt every stored token under the newest key.

Rotation: put the new key first in GASCAP_FIELD_ENCRYPTION_KEYS (keep the old one after it),
deploy, run this command, then remove the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from customers.rotation import field_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored token under the newest GASCAP_FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = field_keys_rotate()
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Re-encrypted {counts['values']} token values in {counts['rows']} rows."
            )
