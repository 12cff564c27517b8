"""The PG&E client's configuration: one frozen value that callers build and pass in.

`gascap.pge` reads nothing from Django settings; the Django side builds a `PgeConfig` in
`gascap.pge_settings`. QA and production differ only by these values (docs/pge-protocol.md, "Hosts
and transport").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# PG&E production (docs/pge-protocol.md). QA is the same paths on apiqa.pge.com / sharemydataqa.
PGE_PRODUCTION_API_BASE = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"
PGE_PRODUCTION_TOKEN_URL = "https://api.pge.com/datacustodian/oauth/v2/token"  # noqa: S105 (a URL)
PGE_PRODUCTION_AUTHORIZE_URL = "https://sharemydata.pge.com/myAuthorization"

ONE_GIB = 1024 * 1024 * 1024


@dataclass(frozen=True)
class PgeConfig:
    """Where PG&E is and who we are. Secrets are kept out of `repr()`."""

    api_base: str
    token_url: str
    authorize_url: str
    client_id: str
    client_secret: str = field(repr=False)
    client_cert: str
    client_key: str = field(repr=False)
    ca_bundle: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_body_bytes: int = ONE_GIB
    legacy_consent: bool = False
    user_agent: str = "gascap/0.1"
    # The registered redirect URI used by `PgeClient.authorize_url` when the caller passes none.
    redirect_uri: str = ""

    def __post_init__(self) -> None:
        # The allow-list is a path *prefix*: a base without its trailing slash would also
        # admit ".../resourceX". Normalise once here so every comparison agrees.
        if not self.api_base.endswith("/"):
            object.__setattr__(self, "api_base", self.api_base + "/")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def batch_base(self) -> str:
        """`.../resource/Batch/`, the base PG&E's 2015 SDK passes to its data calls."""
        return self.api_base + "Batch/"


def config_from_environ(
    *,
    client_id: str = "",
    client_secret: str = "",
    client_cert: str = "",
    client_key: str = "",
    ca_bundle: str | None = None,
) -> PgeConfig:
    """A config from the `GASCAP_PGE_*` environment variables, production by default.

    Used by the seed SDK classes (which take no config in PG&E's design): the allow-list they
    enforce is then the configured API base plus the token URL, as for the typed client.
    """
    return PgeConfig(
        api_base=os.environ.get("GASCAP_PGE_API_BASE") or PGE_PRODUCTION_API_BASE,
        token_url=os.environ.get("GASCAP_PGE_TOKEN_URL") or PGE_PRODUCTION_TOKEN_URL,
        authorize_url=os.environ.get("GASCAP_PGE_AUTHORIZE_URL") or PGE_PRODUCTION_AUTHORIZE_URL,
        client_id=client_id,
        client_secret=client_secret,
        client_cert=client_cert,
        client_key=client_key,
        ca_bundle=ca_bundle or os.environ.get("GASCAP_PGE_CA_BUNDLE") or None,
    )
