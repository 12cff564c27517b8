"""Settings modules: `base` (shared, env-driven), `local` (embedded default: development and
tests, sandbox installed), `production` (required secrets, security block), `test` (pytest)."""
