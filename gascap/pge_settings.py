"""The Django side's door to `gascap.pge`: a `PgeConfig` built from `settings.GASCAP_PGE_*`
(the PG&E package itself reads no Django settings) and a `PgeClient` over it."""

from __future__ import annotations

from django.conf import settings

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig
from gascap.pge.transport import session_build
from ops.metrics import pge_calls_metered


def pge_config() -> PgeConfig:
    """The PG&E configuration from Django settings (read at call time: tests may override)."""
    return PgeConfig(
        api_base=settings.GASCAP_PGE_API_BASE,
        token_url=settings.GASCAP_PGE_TOKEN_URL,
        authorize_url=settings.GASCAP_PGE_AUTHORIZE_URL,
        client_id=settings.GASCAP_PGE_CLIENT_ID,
        client_secret=settings.GASCAP_PGE_CLIENT_SECRET,
        client_cert=settings.GASCAP_PGE_CLIENT_CERT,
        client_key=settings.GASCAP_PGE_CLIENT_KEY,
        ca_bundle=settings.GASCAP_PGE_CA_BUNDLE or None,
        connect_timeout=settings.GASCAP_PGE_CONNECT_TIMEOUT,
        read_timeout=settings.GASCAP_PGE_READ_TIMEOUT,
        max_body_bytes=settings.GASCAP_PGE_MAX_BODY_BYTES,
        legacy_consent=settings.GASCAP_PGE_LEGACY_CONSENT,
        redirect_uri=getattr(settings, "GASCAP_PGE_REDIRECT_URI", ""),
        user_agent=getattr(settings, "GASCAP_PGE_USER_AGENT", "gascap/0.1"),
    )


def pge_client() -> PgeClient:
    """A client for the configured PG&E (one session per client; cheap to build), whose
    calls are counted by kind and status for /metrics."""
    config = pge_config()
    return PgeClient(
        config, session=pge_calls_metered(session_build(config), token_url=config.token_url)
    )
