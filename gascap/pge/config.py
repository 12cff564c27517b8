"""The PG&E client's configuration: one frozen value that callers build and pass in.

`gascap.pge` reads nothing from Django settings; the Django side builds a `PgeConfig` in
`gascap.pge_settings`. QA and production differ only by these values (docs/pge-protocol.md, "Hosts
and transport").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# PG&E production (docs/pge-protocol.md). QA is the same paths on apiqa.pge.com / sharemydataqa.
PGE_PRODUCTION_API_BASE = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"
PGE_PRODUCTION_TOKEN_URL = "https://api.pge.com/datacustodian/oauth/v2/token"  # noqa: S105 (a URL)
PGE_PRODUCTION_AUTHORIZE_URL = "https://sharemydata.pge.com/myAuthorization"

ONE_GIB = 1024 * 1024 * 1024

# PG&E's registration connectivity test asks for a client token at
# `/datacustodian/test/oauth/v2/token` on the token host (docs/pge-protocol.md, "Data APIs").
_TOKEN_SUFFIX = "/oauth/v2/token"  # noqa: S105 (a path)
_TEST_SEGMENT = "/test"


@dataclass(frozen=True)
class PgeEndpoints:
    """The three URLs that differ between PG&E environments."""

    api_base: str
    token_url: str
    authorize_url: str


# `GASCAP_PGE_ENVIRONMENT` (docs/pge-protocol.md, "Hosts and transport"); explicit URLs override.
PGE_ENVIRONMENTS: dict[str, PgeEndpoints] = {
    "production": PgeEndpoints(
        api_base=PGE_PRODUCTION_API_BASE,
        token_url=PGE_PRODUCTION_TOKEN_URL,
        authorize_url=PGE_PRODUCTION_AUTHORIZE_URL,
    ),
    "qa": PgeEndpoints(
        api_base="https://apiqa.pge.com/GreenButtonConnect/espi/1_1/resource/",
        token_url="https://apiqa.pge.com/datacustodian/oauth/v2/token",  # noqa: S106 (a URL)
        authorize_url="https://sharemydataqa.pge.com/myAuthorization/",
    ),
}
SANDBOX_ENVIRONMENT = "sandbox"


def pge_endpoints(environment: str, *, sandbox_url: str = "https://localhost:8443") -> PgeEndpoints:
    """The URLs of `production`, `qa` or `sandbox` (the local PG&E at `sandbox_url`, which
    serves PG&E's paths). Raises ValueError naming the choices for anything else."""
    name = environment.strip().lower()
    if name == SANDBOX_ENVIRONMENT:
        base = sandbox_url.rstrip("/")
        return PgeEndpoints(
            api_base=f"{base}/GreenButtonConnect/espi/1_1/resource/",
            token_url=f"{base}/datacustodian/oauth/v2/token",
            authorize_url=f"{base}/myAuthorization",
        )
    if name not in PGE_ENVIRONMENTS:
        choices = ", ".join([*PGE_ENVIRONMENTS, SANDBOX_ENVIRONMENT])
        raise ValueError(f"Unknown PG&E environment {environment!r}: use one of {choices}")
    return PGE_ENVIRONMENTS[name]


def registration_test_token_url(token_url: str) -> str | None:
    """PG&E's connectivity-test token URL beside `token_url` (same scheme, host and port;
    `.../test/oauth/v2/token` for `.../oauth/v2/token`), or None when the token URL has
    another shape or already is the test URL."""
    parts = urlsplit(token_url)
    path = parts.path
    if parts.query or parts.fragment or not path.endswith(_TOKEN_SUFFIX):
        return None
    prefix = path[: -len(_TOKEN_SUFFIX)]
    if prefix.endswith(_TEST_SEGMENT):
        return None
    return urlunsplit((parts.scheme, parts.netloc, prefix + _TEST_SEGMENT + _TOKEN_SUFFIX, "", ""))


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
    def test_token_url(self) -> str | None:
        """PG&E's registration test token URL on the configured token host (or None)."""
        return registration_test_token_url(self.token_url)

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
    """A config from the `GASCAP_PGE_*` environment variables, production by default
    (`GASCAP_PGE_ENVIRONMENT` picks the URLs; explicit URL variables override them).

    Used by the seed SDK classes (which take no config in PG&E's design): the allow-list they
    enforce is then the configured API base plus the token URL, as for the typed client.
    """
    endpoints = pge_endpoints(
        os.environ.get("GASCAP_PGE_ENVIRONMENT") or "production",
        sandbox_url=f"https://localhost:{os.environ.get('GASCAP_SANDBOX_PORT') or 8443}",
    )
    return PgeConfig(
        api_base=os.environ.get("GASCAP_PGE_API_BASE") or endpoints.api_base,
        token_url=os.environ.get("GASCAP_PGE_TOKEN_URL") or endpoints.token_url,
        authorize_url=os.environ.get("GASCAP_PGE_AUTHORIZE_URL") or endpoints.authorize_url,
        client_id=client_id,
        client_secret=client_secret,
        client_cert=client_cert,
        client_key=client_key,
        ca_bundle=ca_bundle or os.environ.get("GASCAP_PGE_CA_BUNDLE") or None,
    )
