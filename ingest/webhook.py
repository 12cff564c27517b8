"""`POST /pge/notify/<token>/`: the notification webhook and its authentication.

PG&E's BatchList POST is unsigned and PG&E presents no client certificate to receivers
(docs/pge-protocol.md, Notifications), so the request is authenticated cheaply by a secret path
segment (several accepted during a rotation) and optionally Basic credentials, both compared
in constant time. Then: cap the body, refuse DTDs, store the raw body, commit, answer 200
(docs/reliability.md R1). Nothing here fetches, parses ESPI or waits on PG&E.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ingest.notifications import (
    NotificationBodyRejected,
    notification_receive,
    notification_reject,
)
from ops.log_context import log_context_set
from ops.metrics import notification_answer_record

logger = logging.getLogger(__name__)

# Request headers never stored: credentials, and anything a proxy may add that carries one.
_SECRET_HEADERS = {"HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_PROXY_AUTHORIZATION"}


def token_matches(candidate: str, accepted: list[str]) -> bool:
    """Constant-time comparison against every accepted token (no early exit on a match)."""
    given = candidate.encode("utf-8")
    found = False
    for token in accepted:
        if token and hmac.compare_digest(given, token.encode("utf-8")):
            found = True
    return found


def basic_credentials_match(header: str, accepted: list[str]) -> bool:
    """True when `header` is `Basic base64(user:password)` for one of `accepted`."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    found = False
    for pair in accepted:
        if pair and hmac.compare_digest(given, pair.encode("utf-8")):
            found = True
    return found


def _response(status: int, text: str, **headers: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    # Django's request logger would write the path, and the path is the secret: log our own.
    response._has_been_logged = True  # type: ignore[attr-defined]
    notification_answer_record(status=status)
    return response


def _stored_headers(request: HttpRequest) -> dict[str, str]:
    tokens = [t for t in settings.GASCAP_NOTIFY_TOKENS if t]
    headers = {}
    for key, value in request.META.items():
        if key in _SECRET_HEADERS:
            continue
        # A proxy may forward the original path (X-Original-URI and the like): it holds the
        # secret path segment, so such a header is dropped rather than stored.
        if any(token in str(value) for token in tokens):
            continue
        if key.startswith("HTTP_") or key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
            headers[key] = str(value)[:1000]
    return headers


def _read_capped(request: HttpRequest, cap: int) -> bytes | None:
    """The body, or None when it exceeds `cap`. Reads at most cap + 1 bytes, whatever the
    client sends, and never through `request.body` (which reads everything)."""
    chunks: list[bytes] = []
    remaining = cap + 1
    while remaining > 0:
        chunk = request.read(min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    body = b"".join(chunks)
    return None if len(body) > cap else body


@csrf_exempt
def notification_webhook(request: HttpRequest, token: str) -> HttpResponse:
    if not token_matches(token, list(settings.GASCAP_NOTIFY_TOKENS)):
        return _response(404, "not found")
    credentials = list(getattr(settings, "GASCAP_NOTIFY_BASIC_CREDENTIALS", []))
    if credentials and not basic_credentials_match(
        request.META.get("HTTP_AUTHORIZATION", ""), credentials
    ):
        return _response(401, "unauthorized", WWW_Authenticate='Basic realm="gascap-notify"')
    if request.method != "POST":
        return _response(405, "method not allowed", Allow="POST")

    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding and encoding != "identity":
        # A compressed body could expand past every cap (threat T7): refuse before reading.
        logger.info("notification refused: Content-Encoding %.40s", encoding)
        return _response(415, "compressed request bodies are not accepted")

    cap = int(settings.GASCAP_NOTIFY_MAX_BODY_BYTES)
    length_header = request.META.get("CONTENT_LENGTH") or ""
    if not length_header:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return _response(411, "length required")
        return _response(400, "empty body")
    try:
        declared = int(length_header)
    except ValueError:
        return _response(400, "bad Content-Length")
    if declared > cap:
        logger.info("notification refused: Content-Length %d over the %d-byte cap", declared, cap)
        return _response(413, "body too large")
    body = _read_capped(request, cap)
    if body is None:
        return _response(413, "body too large")
    if not body.strip():
        return _response(400, "empty body")

    now = timezone.now()
    headers = _stored_headers(request)
    remote_addr = request.META.get("REMOTE_ADDR") or None
    try:
        notification = notification_receive(
            body=body, headers=headers, remote_addr=remote_addr, now=now
        )
    except NotificationBodyRejected as rejected:
        try:
            notification_reject(
                body=body, headers=headers, remote_addr=remote_addr, reason=rejected.reason, now=now
            )
        except DatabaseError:
            logger.warning(
                "notification rejected (%s) and not recorded: database unavailable", rejected.reason
            )
        return _response(rejected.http_status, f"rejected: {rejected.reason}")
    except DatabaseError:
        # Answer 2xx iff the row is committed (docs/reliability.md R1): no database, 503 fast.
        logger.error("notification not stored: database unavailable")
        return _response(503, "temporarily unavailable", Retry_After="30")
    log_context_set(notification_id=notification.pk)
    logger.info("notification %s stored (%s)", notification.pk, notification.status)
    return _response(200, "ok")
