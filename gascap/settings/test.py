"""pytest: the local setup with fast password hashing. DATABASE_URL / REDIS_URL still switch
the suite to PostgreSQL and Redis (CI does)."""

from __future__ import annotations

from gascap.settings.local import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Django's test client `login()` calls authenticate() without a request, which axes refuses;
# tests that exercise the lockout turn axes on themselves (tests/foundation/
# test_admin_hardening.py). OTP stays off as in local settings; those tests turn it on.
AXES_ENABLED = False

# Tests create the beat schedules they need; `migrate` leaves the test database without them
# (tests/foundation/test_beat.py turns it on to test the post_migrate receiver).
GASCAP_SCHEDULES_ON_MIGRATE = False
