"""PG&E's Authorization resource (`GET Authorization[/{SID}]`), parsed into `AuthorizationInfo`.

An Atom `entry` (or a `feed` of them) whose content is an ESPI `Authorization`: `status`
(0 revoked, 1 active, 2 denied), `authorizedPeriod`, `publishedPeriod`, `expires_at`, `scope`,
`resourceURI`, `authorizationURI`. PG&E's 2015 sample gives the periods in **milliseconds**
(docs/espi-model.md §2.2), so every instant is normalised: a value above 10**11 is milliseconds.

`expires_at` is the **access token's** expiry (epoch seconds), not the consent's end: the ESPI
schema calls it "Expiration period for the access token", and PG&E's 2015 sample has status 1
with an `expires_at` two months before the entry was written. The consent ends by `status`
(0, 2) or by `authorizedPeriod` (start + duration; PG&E's open-ended consents use durations
running past year 9999, parsed as no end). docs/pge-protocol.md, "Data APIs".
Elements are matched by namespace URI, never by prefix (PG&E has changed prefixes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lxml import etree

from gascap.pge.errors import PgePermanentError
from gascap.pge.safexml import parse_small_answer
from gascap.pge.tokens import parse_scope, subscription_id_from_uri

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
# Epoch seconds stay below 10**11 until the year 5138; a larger value is milliseconds.
MILLISECONDS_THRESHOLD = 10**11

# An ASCII integer of at most 20 digits. Found by fuzzing (tests/fuzz): str.isdigit() also
# accepts "²" and other Unicode digits that int() refuses, "--1" passed `lstrip("-")`, and a
# 5,000-digit value hit int()'s digit limit: each raised a bare ValueError (or, divided,
# an OverflowError) instead of the typed rejection.
_INTEGER = re.compile(r"-?[0-9]{1,20}")

STATUS_REVOKED = 0
STATUS_ACTIVE = 1
STATUS_DENIED = 2


@dataclass(frozen=True)
class AuthorizationInfo:
    subscription_id: str | None
    status: int
    authorized_start: datetime | None = None
    # None with a start: open-ended (or too far away to represent).
    authorized_end: datetime | None = None
    published_start: datetime | None = None
    published_end: datetime | None = None
    # The access token's expiry as PG&E reports it; says nothing about the consent's end.
    expires_at: datetime | None = None
    scope: str = ""
    scope_params: dict[str, list[str]] = field(default_factory=dict)
    resource_uri: str | None = None
    authorization_uri: str | None = None
    usage_point_ids: tuple[str, ...] = ()
    url: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status == STATUS_ACTIVE

    def period_ended(self, *, now: datetime) -> bool:
        """Whether the consented `authorizedPeriod` lies in the past (open-ended: never)."""
        return self.authorized_end is not None and self.authorized_end <= now


def _seconds(value: int) -> float:
    return value / 1000 if abs(value) > MILLISECONDS_THRESHOLD else float(value)


def _integer(value: str | None) -> int | None:
    """The ASCII integer `value` holds (surrounding whitespace allowed); None otherwise."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _INTEGER.fullmatch(value) else None


def instant(value: str | None) -> datetime | None:
    """An epoch value (seconds or milliseconds) as an aware UTC datetime; None if unusable."""
    number = _integer(value)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(_seconds(number), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _period(element: etree._Element | None) -> tuple[datetime | None, datetime | None]:
    if element is None:
        return None, None
    start_text = element.findtext(f"{{{ESPI}}}start")
    duration_text = element.findtext(f"{{{ESPI}}}duration")
    start = instant(start_text)
    duration = _integer(duration_text)
    if start is None or duration is None or duration < 0:
        return start, None
    # The duration is in the same unit as the start (both milliseconds in PG&E's sample).
    raw_start = abs(_integer(start_text) or 0)
    try:
        seconds = duration / 1000 if raw_start > MILLISECONDS_THRESHOLD else duration
        return start, start + timedelta(seconds=seconds)
    except OverflowError:
        # PG&E's "open-ended" periods run past year 9999: no end we can represent.
        return start, None


def _text(parent: etree._Element, name: str) -> str | None:
    value = parent.findtext(f"{{{ESPI}}}{name}")
    return value.strip() if value and value.strip() else None


def _self_link(entry: etree._Element | None) -> str | None:
    if entry is None:
        return None
    for link in entry.iterfind(f"{{{ATOM}}}link"):
        href = str(link.get("href") or "").strip()
        if link.get("rel") == "self" and href:
            return href
    return None


def authorization_from_element(
    element: etree._Element, *, entry: etree._Element | None = None
) -> AuthorizationInfo:
    status = _integer(_text(element, "status"))
    if status is None:
        raise PgePermanentError("Authorization without a numeric status", code="malformed")
    authorized_start, authorized_end = _period(element.find(f"{{{ESPI}}}authorizedPeriod"))
    published_start, published_end = _period(element.find(f"{{{ESPI}}}publishedPeriod"))
    scope = _text(element, "scope") or ""
    resource_uri = _text(element, "resourceURI")
    authorization_uri = _text(element, "authorizationURI")
    url = _self_link(entry) or authorization_uri
    usage_points: tuple[str, ...] = ()
    if resource_uri and "/UsagePoint/" in resource_uri:
        usage_points = (resource_uri.rstrip("/").rsplit("/UsagePoint/", 1)[1].split("/")[0],)
    return AuthorizationInfo(
        subscription_id=subscription_id_from_uri(
            (resource_uri or "").split("/UsagePoint/")[0] or authorization_uri
        ),
        status=status,
        authorized_start=authorized_start,
        authorized_end=authorized_end,
        published_start=published_start,
        published_end=published_end,
        expires_at=instant(_text(element, "expires_at")),
        scope=scope,
        scope_params=parse_scope(scope),
        resource_uri=resource_uri,
        authorization_uri=authorization_uri,
        usage_point_ids=usage_points,
        url=url,
    )


def parse_authorizations(data: bytes) -> list[AuthorizationInfo]:
    """Every Authorization in an Atom `feed`, a single `entry` or a bare `Authorization`."""
    root = parse_small_answer(data, what="Authorization answer")
    if root.tag == f"{{{ESPI}}}Authorization":
        return [authorization_from_element(root)]
    if root.tag == f"{{{ATOM}}}entry":
        entries = [root]
    elif root.tag == f"{{{ATOM}}}feed":
        entries = list(root.iterfind(f"{{{ATOM}}}entry"))
    else:
        raise PgePermanentError(
            "Authorization answer is not an Atom feed or entry", code="malformed"
        )
    found: list[AuthorizationInfo] = []
    for entry in entries:
        element = next(entry.iter(f"{{{ESPI}}}Authorization"), None)
        if element is not None:
            found.append(authorization_from_element(element, entry=entry))
    return found
