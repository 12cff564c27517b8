"""System checks for the token encryption keys (docs/reliability.md R6, test 57)."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.core import checks

from customers.crypto import configured_keys


@checks.register(checks.Tags.security, deploy=True)
def check_field_encryption_keys(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Production must encrypt tokens with configured keys, never a generated dev key."""
    keys = configured_keys()
    if not keys:
        return [
            checks.Error(
                "No field-encryption key is configured: tokens would be encrypted with a "
                "generated development key.",
                hint="Set GASCAP_FIELD_ENCRYPTION_KEYS (Fernet keys, newest first).",
                id="customers.E001",
            )
        ]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, TypeError, UnicodeError):
            return [
                checks.Error(
                    f"GASCAP_FIELD_ENCRYPTION_KEYS entry {position} is not a Fernet key.",
                    id="customers.E002",
                )
            ]
    return []
