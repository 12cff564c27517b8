"""The PG&E client certificate's expiry, read from the configured PEM file (a certificate
PG&E stops accepting ends every call with 400 Invalid Certificate, docs/pge-protocol.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography import x509
from django.conf import settings


def client_certificate_expires_at() -> datetime | None:
    """`notAfter` of the first certificate in GASCAP_PGE_CLIENT_CERT (None: none readable)."""
    path = Path(settings.GASCAP_PGE_CLIENT_CERT or "")
    if not path.is_file():
        return None
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return None
    return certificate.not_valid_after_utc
