"""The one HTTP transport to PG&E: a mutual-TLS `requests.Session` and a capped, streamed send.

Every call PG&E sees goes through `Transport.send`, which
- refuses URLs outside the allow-list (`urls.UrlPolicy`) and missing certificate files before
  any network use;
- presents the client certificate PG&E registered (every server-to-server call is mutual TLS),
  verifies PG&E's server against the configured CA bundle (or the system trust store);
- sets connect/read timeouts, never follows a redirect (a 3xx could hand a bearer token to
  another host, threat T2), and
- streams the body into a spooled temporary file, counting *decoded* bytes, so a huge or
  gzip-bomb answer stops at the cap with flat memory (threat T7).
Failures become the errors of `gascap.pge.errors`; HTTP statuses are classified by the caller
(`answers.error_for_answer`).
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import IO
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from gascap.pge.config import PgeConfig
from gascap.pge.errors import (
    PgeConfigurationError,
    PgeError,
    PgePermanentError,
    PgeTransientError,
    redact,
)
from gascap.pge.urls import UrlPolicy

CHUNK_BYTES = 64 * 1024
# A feed below this stays in memory; above it the spool rolls over to a temporary file.
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
# Error answers are read only this far: enough for PG&E's JSON error or "Invalid Certificate".
ERROR_BODY_BYTES = 64 * 1024

# What a failed handshake looks like when the *server* is not trusted; anything else in a TLS
# failure (an alert such as "certificate required" / "unknown ca", or the server simply
# closing the connection, as a TLS 1.3 server does after refusing our certificate) is taken
# as PG&E refusing our client certificate.
_SERVER_NOT_TRUSTED = ("certificate verify failed", "hostname mismatch", "doesn't match")


class FetchedDocument:
    """One PG&E answer with its body spooled to a temporary file (a large feed never sits in
    memory). `size` counts decoded bytes; a 204 gives an empty document."""

    def __init__(
        self,
        *,
        status: int,
        content_type: str,
        url: str,
        headers: Mapping[str, str],
        body: IO[bytes],
        size: int,
        elapsed: float,
    ) -> None:
        self.status = status
        self.content_type = content_type
        self.url = url
        self.headers = CaseInsensitiveDict(headers)
        self.size = size
        self.elapsed = elapsed
        self._body = body

    def __repr__(self) -> str:
        return (
            f"FetchedDocument(status={self.status}, content_type={self.content_type!r}, "
            f"size={self.size}, url={self.url[:120]!r})"
        )

    def open(self) -> IO[bytes]:
        """The body as a binary file positioned at its start (the same object every call)."""
        self._body.seek(0)
        return self._body

    def read(self) -> bytes:
        return self.open().read()

    def text(self) -> str:
        return self.read().decode("utf-8", errors="replace")

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> FetchedDocument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def certificate_files_check(config: PgeConfig) -> None:
    """Raise `PgeConfigurationError` unless the client certificate and key files exist."""
    for what, path in (
        ("client certificate", config.client_cert),
        ("client key", config.client_key),
    ):
        if not path:
            raise PgeConfigurationError(f"No {what} file is configured", code="missing_certificate")
        if not os.path.isfile(path):
            raise PgeConfigurationError(
                f"The {what} file does not exist: {path}", code="missing_certificate"
            )
    if config.ca_bundle and not os.path.exists(config.ca_bundle):
        raise PgeConfigurationError(
            f"The CA bundle does not exist: {config.ca_bundle}", code="missing_ca_bundle"
        )


def session_build(config: PgeConfig) -> requests.Session:
    """The mutual-TLS session for PG&E (certificate files are checked per request)."""
    session = requests.Session()
    session.cert = (config.client_cert, config.client_key)
    session.verify = config.ca_bundle or True
    session.headers["User-Agent"] = config.user_agent
    # No .netrc credentials, proxies or REQUESTS_CA_BUNDLE picked up from the environment:
    # the only trust and the only credentials are the ones configured here.
    session.trust_env = False
    return session


def _ssl_reason(exc: BaseException) -> str | None:
    """The text of the first `ssl.SSLError` in an exception chain (requests → urllib3 → ssl)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return str(current)
        pending.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        for linked in (getattr(current, "reason", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None


def _tls_error(reason: str, host: str) -> PgeConfigurationError | PgeTransientError:
    if any(marker in reason.lower() for marker in _SERVER_NOT_TRUSTED):
        # Nothing was sent (verification fails before any HTTP byte). Transient, so the task
        # retries a bounded number of times: the cause may be passing (DNS or routing to the
        # wrong host, PG&E mid-rotation of its certificate) as well as our CA bundle; if it
        # persists the fetch ends FAILED with this message (reliability-bar test 26).
        return PgeTransientError(
            f"The server certificate of {host} is not trusted by the configured CA bundle "
            f"(GASCAP_PGE_CA_BUNDLE): {reason}",
            code="tls",
        )
    return PgeConfigurationError(
        f"TLS handshake with {host} failed: the server refused our client certificate (check "
        "GASCAP_PGE_CLIENT_CERT / GASCAP_PGE_CLIENT_KEY and the certificate registered at "
        f"PG&E): {reason}",
        code="tls",
    )


class Transport:
    """Sends requests to PG&E for one configuration over one session."""

    def __init__(self, config: PgeConfig, *, session: requests.Session | None = None) -> None:
        self.config = config
        self.policy = UrlPolicy(
            api_base=config.api_base,
            token_url=config.token_url,
            test_token_url=config.test_token_url,
        )
        self._session = session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = session_build(self.config)
        return self._session

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        max_bytes: int | None = None,
        secrets: Iterable[str | None] = (),
    ) -> FetchedDocument:
        """Send one request and return the answer (any status) with its body spooled.

        Raises `PgeUrlRefused` / `PgeConfigurationError` before any network use, and
        `PgeTransientError` (timeouts, connection errors), `PgeConfigurationError` (TLS) or
        `PgePermanentError` (`too_large`, `unexpected_redirect`) after.
        """
        secrets = tuple(secrets)
        self.policy.check(url)
        certificate_files_check(self.config)
        host = urlsplit(url).hostname or "PG&E"
        limit = max_bytes if max_bytes is not None else self.config.max_body_bytes
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                params=dict(params or {}),
                data=dict(data) if data is not None else None,
                auth=auth,
                timeout=(self.config.connect_timeout, self.config.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.TooManyRedirects:
            raise PgePermanentError(
                f"{host} answered with a redirect; not followed", code="unexpected_redirect"
            ) from None
        except requests.exceptions.SSLError as exc:
            raise _tls_error(_ssl_reason(exc) or type(exc).__name__, host) from None
        except requests.exceptions.Timeout as exc:
            raise PgeTransientError(
                f"timeout talking to {host}: {type(exc).__name__}", code="timeout"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason = _ssl_reason(exc)
            if reason is not None:
                raise _tls_error(reason, host) from None
            raise PgeTransientError(
                f"connection to {host} failed: {redact(str(exc), secrets)}", code="connection"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise PgePermanentError(
                f"request to {host} could not be sent: {type(exc).__name__}", code="bad_request"
            ) from None

        try:
            if 300 <= response.status_code < 400:
                # Never followed: the Location may point anywhere (docs/reliability.md test 24).
                raise PgePermanentError(
                    f"{host} answered {response.status_code} with a redirect; not followed",
                    status=response.status_code,
                    code="unexpected_redirect",
                )
            ok = 200 <= response.status_code < 300
            body = self._read_capped(response, limit if ok else ERROR_BODY_BYTES, truncate=not ok)
        finally:
            response.close()
        return FetchedDocument(
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            url=url,
            headers=response.headers,
            body=body[0],
            size=body[1],
            elapsed=time.monotonic() - started,
        )

    def _read_capped(
        self, response: requests.Response, limit: int, *, truncate: bool
    ) -> tuple[IO[bytes], int]:
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
        size = 0
        try:
            for chunk in response.raw.stream(CHUNK_BYTES, decode_content=True):
                if size + len(chunk) > limit:
                    if truncate:
                        spool.write(chunk[: limit - size])
                        size = limit
                        break
                    raise PgePermanentError(
                        f"answer larger than the {limit}-byte cap (decoded); download stopped",
                        status=response.status_code,
                        code="too_large",
                    )
                spool.write(chunk)
                size += len(chunk)
        except PgeError:
            spool.close()
            raise
        except (urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout):
            spool.close()
            raise PgeTransientError("timeout while reading the answer", code="timeout") from None
        except urllib3.exceptions.DecodeError:
            spool.close()
            raise PgePermanentError(
                "answer body could not be decoded (Content-Encoding)",
                status=response.status_code,
                code="malformed",
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            spool.close()
            raise PgeTransientError(
                f"connection broken while reading the answer: {type(exc).__name__}",
                code="connection",
            ) from None
        spool.seek(0)
        return spool, size
