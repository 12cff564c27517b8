"""Sorting PG&E's non-success answers into the client's error classes.

PG&E's errors are RFC 6749 JSON (`{"error": "invalid_request", "error_description": ...}`)
with 400; the token test endpoint has been seen answering XML; a wrong or missing client
certificate answers `400` with the text `Invalid Certificate` (docs/pge-protocol.md). 401/403 mean
an expired token, a token of the wrong class or data outside the scope; 429 and 5xx are worth a
retry later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

from lxml import etree

from gascap.pge.errors import (
    PgeAuthError,
    PgeConfigurationError,
    PgeError,
    PgePermanentError,
    PgeTransientError,
    redact,
)
from gascap.pge.safexml import XmlRejected, parse_small_document
from gascap.pge.transport import FetchedDocument


def error_fields(body: bytes, content_type: str) -> tuple[str, str]:
    """PG&E's (`error`, `error_description`) from a JSON or XML body; empty when absent."""
    stripped = body.strip()
    kind = content_type.lower()
    if "json" in kind or stripped.startswith(b"{"):
        try:
            data = json.loads(stripped.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return "", ""
        if isinstance(data, dict):
            return str(data.get("error") or ""), str(data.get("error_description") or "")
        return "", ""
    if "xml" in kind or stripped.startswith(b"<"):
        try:
            root = parse_small_document(stripped)
        except XmlRejected:
            return "", ""
        found: dict[str, str] = {}
        for element in root.iter():
            if isinstance(element.tag, str):
                name = etree.QName(element).localname
                if name in {"error", "error_description"} and element.text:
                    found.setdefault(name, element.text.strip())
        return found.get("error", ""), found.get("error_description", "")
    return "", ""


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now (delta-seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_answer(document: FetchedDocument, *, secrets: Iterable[str | None] = ()) -> PgeError:
    """The error a non-2xx answer stands for (the caller raises it)."""
    secrets = tuple(secrets)
    error = _classify(document, secrets)
    fields = error_fields(document.read(), document.content_type)
    error.pge_error = redact(fields[0], secrets)
    error.pge_description = redact(fields[1], secrets)
    return error


def _classify(document: FetchedDocument, secrets: tuple[str | None, ...]) -> PgeError:
    status = document.status
    body = document.read()
    error, description = error_fields(body, document.content_type)
    text = " ".join(body.decode("utf-8", errors="replace").split())
    detail = redact(description or error or text or f"HTTP {status} with an empty body", secrets)
    code = error if error and error.replace("_", "").isalnum() else f"http_{status}"

    if status == 400 and "invalid certificate" in text.lower():
        return PgeConfigurationError(
            "PG&E refused our client certificate (400 Invalid Certificate): check the "
            "certificate registered at PG&E and GASCAP_PGE_CLIENT_CERT / GASCAP_PGE_CLIENT_KEY",
            status=status,
            code="invalid_certificate",
        )
    if error == "invalid_grant":
        return PgeAuthError(
            f"PG&E refused the grant; the consent is gone: {detail}",
            status=status,
            code="invalid_grant",
            invalid_grant=True,
        )
    if status in (401, 403):
        return PgeAuthError(f"PG&E refused the token: {detail}", status=status, code=code)
    if status == 429:
        return PgeTransientError(
            f"PG&E rate limit: {detail}",
            status=status,
            code="rate_limited",
            retry_after=retry_after_seconds(document.headers.get("Retry-After")),
        )
    if status >= 500 or status == 408:
        return PgeTransientError(
            f"PG&E server error: {detail}",
            status=status,
            code=f"http_{status}",
            retry_after=retry_after_seconds(document.headers.get("Retry-After")),
        )
    return PgePermanentError(f"PG&E refused the request: {detail}", status=status, code=code)
