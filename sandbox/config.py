"""The sandbox's configuration, read from Django settings (the same values gascap's local
settings use, so the two agree) and overridable field by field in tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class SandboxConfig:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    bulk_id: str
    notify_url: str
    cert_dir: Path
    # PG&E POSTs the BatchList 10-120 s after the request; the sandbox is quicker by default.
    notify_delay: float = 1.0
    # Days a Batch request without published-min/max covers.
    default_days: int = 3
    # Host name in the URLs the sandbox hands out (its certificate covers localhost).
    public_host: str = "localhost"
    # Scale mode (sandbox/scale.py): N synthetic consents answered through Bulk, split into
    # documents of `scale_per_document` customers (the sandbox's choice). 0 = off.
    scale_customers: int = 0
    scale_per_document: int = 500

    def with_changes(self, **changes: Any) -> SandboxConfig:
        return replace(self, **changes)


def sandbox_config(**overrides: Any) -> SandboxConfig:
    """The configuration from Django settings, with `overrides` applied."""
    var_dir = Path(getattr(settings, "VAR_DIR", Path("var")))
    redirect = getattr(settings, "GASCAP_PGE_REDIRECT_URI", "")
    extra = getattr(settings, "GASCAP_SANDBOX_EXTRA_REDIRECT_URIS", [])
    config = SandboxConfig(
        client_id=getattr(settings, "GASCAP_PGE_CLIENT_ID", "") or "sandbox-client",
        client_secret=getattr(settings, "GASCAP_PGE_CLIENT_SECRET", "") or "sandbox-secret",
        redirect_uris=tuple(u for u in (redirect, *extra) if u),
        bulk_id=getattr(settings, "GASCAP_PGE_THIRD_PARTY_ID", "") or "50098",
        notify_url=getattr(settings, "GASCAP_SANDBOX_NOTIFY_URL", ""),
        cert_dir=Path(getattr(settings, "GASCAP_SANDBOX_CERT_DIR", var_dir / "certs")),
        notify_delay=float(getattr(settings, "GASCAP_SANDBOX_NOTIFY_DELAY", 1.0)),
        default_days=int(getattr(settings, "GASCAP_SANDBOX_DEFAULT_DAYS", 3)),
        scale_customers=int(getattr(settings, "GASCAP_SANDBOX_SCALE_CUSTOMERS", 0)),
        scale_per_document=int(getattr(settings, "GASCAP_SANDBOX_SCALE_PER_DOCUMENT", 500)),
    )
    return config.with_changes(**overrides)
