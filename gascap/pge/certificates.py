"""Reading the mutual-TLS client certificate registered at PG&E: when it expires.

PG&E accepts only the CA-issued certificate the third party registered (docs/pge-protocol.md,
"Hosts and transport"); once it expires every call answers `400 Invalid Certificate`, so the
operator must register a new one in time. The Django side turns this into a system check and
an admin banner (`gascap/checks.py`, `gascap/admin_site.py`); `pge_check` prints the days left.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from cryptography import x509


class CertificateUnreadable(ValueError):
    """The file is missing, unreadable or holds no PEM certificate."""


def certificate_not_after(path: str | Path) -> datetime:
    """The expiry (aware UTC) of the first certificate in the PEM file at `path` (a chain file
    starts with the client's own certificate)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CertificateUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateUnreadable(f"{path} holds no PEM certificate") from None
    return certificates[0].not_valid_after_utc


def certificate_days_left(path: str | Path, *, now: datetime) -> int:
    """Whole days from `now` until the certificate expires (rounded down; negative once
    expired: -1 means it expired less than a day ago)."""
    seconds = (certificate_not_after(path) - now).total_seconds()
    return math.floor(seconds / 86400)
