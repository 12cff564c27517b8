"""pytest: the local setup with fast password hashing. DATABASE_URL / REDIS_URL still switch
the suite to PostgreSQL and Redis (CI does)."""

from __future__ import annotations

from gascap.settings.local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
