"""Standard Webhooks signing (https://www.standardwebhooks.com, "Signature scheme"):

    webhook-id: <event id>   webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64(HMAC-SHA256(secret bytes, f"{id}.{timestamp}.{body}"))>

The secret is `whsec_` + base64 of 32 random bytes; the HMAC key is the decoded bytes. Kept
here, small and dependency-free, so the tests can check it against the `standardwebhooks`
reference library (a signer shared with the verifier would agree with its own bugs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105  (the scheme's prefix, not a secret)


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def signature(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(*, secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(
            secret=secret, message_id=message_id, timestamp=timestamp, body=body
        ),
        "Content-Type": "application/json",
    }
