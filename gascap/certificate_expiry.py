"""The operator-facing warning that PG&E's client certificate is about to expire, shared by
the system check (`gascap/checks.py`, gascap.W002) and the admin banner
(`gascap/admin_site.py`). The reading itself is `gascap.pge.certificates` (no Django there).

Once the certificate expires every call to PG&E answers `400 Invalid Certificate`
(docs/pge-protocol.md, "Hosts and transport"), so the warning starts
`GASCAP_PGE_CERT_WARN_DAYS` (30) days ahead: time to have a new one issued and registered.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from gascap.pge.certificates import CertificateUnreadable, certificate_days_left


def client_certificate_warning(*, now: datetime) -> str | None:
    """The warning text, or None when the certificate has time left.

    An unset or unreadable path gives None here: `manage.py pge_check` reports it, and a
    fresh development checkout has no sandbox certificate until `make run` makes one.
    """
    path = settings.GASCAP_PGE_CLIENT_CERT
    if not path:
        return None
    try:
        days = certificate_days_left(path, now=now)
    except CertificateUnreadable:
        return None
    if days >= settings.GASCAP_PGE_CERT_WARN_DAYS:
        return None
    if days < 0:
        return (
            f"The PG&E client certificate ({path}) has expired: PG&E refuses every call. "
            "Register a new certificate at PG&E and set GASCAP_PGE_CLIENT_CERT / _KEY."
        )
    return (
        f"The PG&E client certificate ({path}) expires in {days} day(s). Register a new "
        "certificate at PG&E before then and set GASCAP_PGE_CLIENT_CERT / _KEY."
    )
