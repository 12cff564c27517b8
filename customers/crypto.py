"""Encryption at rest for tokens (reliability rule R6, test 51).

cryptography's MultiFernet over the keys in `GASCAP_FIELD_ENCRYPTION_KEYS` (comma-separated
Fernet keys, newest first), separate from SECRET_KEY so a leaked SECRET_KEY or database dump
alone reveals no token. The encrypted payload carries the row binding and the column name and
both are checked on decrypt: a ciphertext copied into another row or column does not decrypt.

Without configured keys (development, tests) a key is generated once into
`GASCAP_FIELD_ENCRYPTION_DEV_KEY_FILE` (mode 0600, under var/, never committed). Production
settings refuse to start without keys, and the deploy check `customers.E001` fails.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


class TokenDecryptError(Exception):
    """A stored token could not be decrypted (wrong key, tampered, or bound to another row).

    The message never contains the ciphertext or the plaintext.
    """


def configured_keys() -> list[str]:
    """The keys from settings, newest first (empty when none is configured)."""
    raw = getattr(settings, "GASCAP_FIELD_ENCRYPTION_KEYS", None) or []
    if isinstance(raw, str):
        raw = raw.split(",")
    return [key.strip() for key in raw if key and key.strip()]


def _dev_key() -> str:
    path_setting = getattr(settings, "GASCAP_FIELD_ENCRYPTION_DEV_KEY_FILE", "")
    if not path_setting:
        raise ImproperlyConfigured(
            "Set GASCAP_FIELD_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first)."
        )
    path = Path(path_setting)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting together do not overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(Fernet.generate_key().decode("ascii") + "\n")
            logger.warning("Generated a development field-encryption key at %s", path)
    return path.read_text(encoding="ascii").strip()


def _fernet() -> MultiFernet:
    keys = configured_keys() or [_dev_key()]
    try:
        return MultiFernet([Fernet(key.encode("ascii")) for key in keys])
    except (ValueError, TypeError) as exc:
        # Never echo the key material itself.
        raise ImproperlyConfigured(
            "GASCAP_FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key."
        ) from exc


def token_encrypt(value: str, *, binding: str, field: str) -> str:
    """Encrypt `value` under the newest key, bound to `binding` (the row) and `field`."""
    payload = json.dumps({"b": binding, "f": field, "v": value}, separators=(",", ":"))
    return _fernet().encrypt(payload.encode("utf-8")).decode("ascii")


def token_decrypt(ciphertext: str, *, binding: str, field: str) -> str:
    """The plaintext; raises TokenDecryptError, never returns ciphertext."""
    try:
        payload = json.loads(_fernet().decrypt(ciphertext.encode("ascii")))
    except (InvalidToken, ValueError, UnicodeError) as exc:
        raise TokenDecryptError(
            f"Cannot decrypt {field} of {binding}: wrong key or tampered value."
        ) from exc
    if not (
        isinstance(payload, dict)
        and hmac.compare_digest(str(payload.get("b", "")), binding)
        and hmac.compare_digest(str(payload.get("f", "")), field)
        and isinstance(payload.get("v"), str)
    ):
        raise TokenDecryptError(f"The value in {field} of {binding} belongs to another row.")
    return payload["v"]


def token_rotate(ciphertext: str) -> str:
    """Re-encrypt under the newest key, keeping the bound payload (MultiFernet.rotate)."""
    try:
        return _fernet().rotate(ciphertext.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise TokenDecryptError("Cannot rotate a value no configured key decrypts.") from exc
