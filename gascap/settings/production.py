"""Production: PostgreSQL, Redis, secrets only from the environment, HTTPS-only cookies, HSTS.

A missing required variable stops start-up with ImproperlyConfigured naming it.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from gascap.settings.base import *  # noqa: F403
from gascap.settings.base import env

_REQUIRED = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "GASCAP_FIELD_ENCRYPTION_KEYS",
    "GASCAP_NOTIFY_TOKEN",
)
for _name in _REQUIRED:
    if not env.str(_name, default=""):
        raise ImproperlyConfigured(f"Set the {_name} environment variable (see .env.example).")

# The sandbox is installed only by the local settings.
if GASCAP_PGE_ENVIRONMENT == "sandbox":  # noqa: F405
    raise ImproperlyConfigured("GASCAP_PGE_ENVIRONMENT=sandbox needs gascap.settings.local.")

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
GASCAP_ADMIN_PATH = env.str("GASCAP_ADMIN_PATH", default="operators/").strip("/") + "/"
# A verified OTP device for every admin login (docs/reliability.md R8, test 58); base defaults it on
# too, this line keeps a local.py default from ever leaking into production.
GASCAP_ADMIN_REQUIRE_OTP = env.bool("GASCAP_ADMIN_REQUIRE_OTP", default=True)

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# The load balancer's health probe and Prometheus's scrape speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
