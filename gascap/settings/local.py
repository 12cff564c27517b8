"""The embedded default for development, `make run` and tests: DEBUG on, the sandbox (a local
PG&E) installed and gascap pointed at it unless the environment says otherwise."""

from __future__ import annotations

from gascap.settings.base import *  # noqa: F403
from gascap.settings.base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
INSTALLED_APPS = [*INSTALLED_APPS, "sandbox"]  # noqa: F405

GASCAP_SANDBOX_PORT = env.int("GASCAP_SANDBOX_PORT", default=8443)
GASCAP_SANDBOX_CERT_DIR = VAR_DIR / "certs"
_SANDBOX = f"https://localhost:{GASCAP_SANDBOX_PORT}"
GASCAP_PGE_API_BASE = env.str(
    "GASCAP_PGE_API_BASE", default=f"{_SANDBOX}/GreenButtonConnect/espi/1_1/resource/"
)
GASCAP_PGE_TOKEN_URL = env.str(
    "GASCAP_PGE_TOKEN_URL", default=f"{_SANDBOX}/datacustodian/oauth/v2/token"
)
GASCAP_PGE_AUTHORIZE_URL = env.str(
    "GASCAP_PGE_AUTHORIZE_URL", default=f"{_SANDBOX}/myAuthorization"
)
GASCAP_PGE_CA_BUNDLE = env.str(
    "GASCAP_PGE_CA_BUNDLE", default=str(GASCAP_SANDBOX_CERT_DIR / "ca.pem")
)
GASCAP_PGE_CLIENT_ID = env.str("GASCAP_PGE_CLIENT_ID", default="sandbox-client")
GASCAP_PGE_CLIENT_SECRET = env.str("GASCAP_PGE_CLIENT_SECRET", default="sandbox-secret")
GASCAP_PGE_CLIENT_CERT = env.str(
    "GASCAP_PGE_CLIENT_CERT", default=str(GASCAP_SANDBOX_CERT_DIR / "client.pem")
)
GASCAP_PGE_CLIENT_KEY = env.str(
    "GASCAP_PGE_CLIENT_KEY", default=str(GASCAP_SANDBOX_CERT_DIR / "client.key")
)
GASCAP_PGE_THIRD_PARTY_ID = env.str("GASCAP_PGE_THIRD_PARTY_ID", default="50098")
# A company app under development on this machine may receive consent sessions' browsers.
GASCAP_APP_RETURN_ORIGINS = env.list(
    "GASCAP_APP_RETURN_ORIGINS", default=["http://localhost:3000", "http://127.0.0.1:3000"]
)


# Where the sandbox POSTs its BatchList notifications (gascap's own webhook).
GASCAP_SANDBOX_NOTIFY_URL = env.str(
    "GASCAP_SANDBOX_NOTIFY_URL",
    default=f"http://localhost:8000/pge/notify/{GASCAP_NOTIFY_TOKENS[0]}/",  # noqa: F405
)

# Operators' admin: a plain password login for `make run` / `make demo` (the admin header
# says so). Production keeps the base default, OTP required (docs/reliability.md test 58).
GASCAP_ADMIN_REQUIRE_OTP = env.bool("GASCAP_ADMIN_REQUIRE_OTP", default=False)
