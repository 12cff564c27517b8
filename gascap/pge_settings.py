"""The Django side's door to `gascap.pge`: a `PgeConfig` built from `settings.GASCAP_PGE_*`
(the PG&E package itself reads no Django settings) and a `PgeClient` over it whose every call
passes the shared PG&E call budget (`gascap.pge_budget`)."""

from __future__ import annotations

from django.conf import settings

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig
from gascap.pge.gate import Priority
from gascap.pge.transport import session_build
from gascap.pge_budget.budget import PgeBudgetGate
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


def pge_client(*, priority: Priority | None = None) -> PgeClient:
    """A client for the configured PG&E (one session per client; cheap to build): every call
    passes the PG&E call budget (`gascap.pge_budget`) and is counted by kind and status for
    /metrics. `priority` None: the priority the running work declared
    (`gascap.pge.gate.call_priority`)."""
    config = pge_config()
    return PgeClient(
        config,
        session=pge_calls_metered(session_build(config), token_url=config.token_url),
        gate=PgeBudgetGate(),
        priority=priority,
    )
