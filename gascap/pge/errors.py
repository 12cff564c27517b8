"""The errors the PG&E client raises, sorted by what the caller should do next.

- `PgeTransientError`: try again later (timeouts, connection errors, 5xx, 429).
- `PgeAuthError`: get a new token or a new consent (401/403, `invalid_grant`).
- `PgeConfigurationError`: an operator must fix something (client certificate rejected,
  missing certificate files, TLS failure against PG&E's CA). Retrying does not help.
- `PgePermanentError`: this request will never succeed as sent (other 4xx, malformed answers,
  `too_large`, `unexpected_redirect`); `PgeUrlRefused` for URLs outside the allow-list.

Every error carries `status` (HTTP status or None when no HTTP answer came) and a short
machine `code`. Messages never contain a token: callers build them from PG&E's error fields,
which `redact` scrubs of the secrets the request carried.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_MESSAGE_CHARS = 300


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty secret replaced, cut to a log-friendly length."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "…"
    return text


class PgeError(Exception):
    """Base class: `status` is the HTTP status (None without an HTTP answer), `code` a reason."""

    default_code = "error"
    # PG&E's own `error` / `error_description` fields when its answer carried them (redacted).
    pge_error: str = ""
    pge_description: str = ""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or self.default_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r})"

    def __str__(self) -> str:
        status = f"HTTP {self.status}, " if self.status is not None else ""
        return f"{self.message} ({status}{self.code})"


class PgeTransientError(PgeError):
    """Worth retrying with backoff; `retry_after` (seconds) when PG&E said when."""

    default_code = "transient"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class PgeAuthError(PgeError):
    """The token was refused. `invalid_grant` means the consent is gone: re-consent needed."""

    default_code = "auth"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        invalid_grant: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.invalid_grant = invalid_grant


class PgeConfigurationError(PgeError):
    """Our side is misconfigured (certificates, CA bundle, URLs). An operator must act."""

    default_code = "configuration"


class PgePermanentError(PgeError):
    """The request will not succeed as sent; do not retry."""

    default_code = "permanent"


class PgeUrlRefused(PgePermanentError):
    """A URL outside the allow-list (PG&E's API base and token URL). Nothing was sent."""

    default_code = "url_refused"
