"""The embedded default for development, `make run` and tests: DEBUG on, the sandbox (a local
PG&E) installed and gascap pointed at it unless the environment says otherwise."""

from __future__ import annotations

from gascap.settings.base import *  # noqa: F403
from gascap.settings.base import VAR_DIR, env, pge_environment_urls

DEBUG = env.bool("DJANGO_DEBUG", default=True)
INSTALLED_APPS = [*INSTALLED_APPS, "sandbox"]  # noqa: F405

GASCAP_SANDBOX_CERT_DIR = VAR_DIR / "certs"
# The local sandbox by default; GASCAP_PGE_ENVIRONMENT=qa (or production) points a development
# machine at PG&E itself, and then none of the sandbox's credentials below are defaults.
(
    GASCAP_PGE_ENVIRONMENT,
    GASCAP_PGE_API_BASE,
    GASCAP_PGE_TOKEN_URL,
    GASCAP_PGE_AUTHORIZE_URL,
) = pge_environment_urls("sandbox")
if GASCAP_PGE_ENVIRONMENT == "sandbox":
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
# Webhook receivers of an app under development listen on http://localhost.
GASCAP_WEBHOOK_ALLOW_HTTP = env.bool("GASCAP_WEBHOOK_ALLOW_HTTP", default=True)
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
