"""The grammar of PG&E resource URLs: one strict pattern per kind, the subscription a URL
names, and whether a GET of it fetches data or *starts a new request* at PG&E.

Applied after the allow-list (`urls.UrlPolicy`: scheme, host, port, API base prefix) to the
URL as written; nothing is decoded or normalised first. Paths are relative to the API base
(docs/pge-protocol.md "Data APIs", docs/espi-model.md §3):

- BULK `Batch/Bulk/{BulkID}` and SUBSCRIPTION `Batch/Subscription/{SID}`: `correlationID`
  alone (notified data) or `published-min`/`published-max` (a new request).
- USAGE_POINT `Batch/Subscription/{SID}/UsagePoint/{UPID}` (synchronous): `published-min`,
  `published-max`.
- RESOURCE, single resources under a subscription: `Subscription/{SID}/UsagePoint`, then
  optionally `/{UPID}`, then optionally `/MeterReading[/{MR}[/IntervalBlock[/{IB}]]]` or
  `/UsageSummary[/{X}]` or `/ElectricPowerUsageSummary[/{X}]`: `published-min`,
  `published-max`.
- READING_TYPE `ReadingType/{id}`, `LocalTimeParameters/{id}`: no query.
- AUTHORIZATION `Authorization`, `Authorization/{SID}`: no query.

- Only a Batch URL carrying a `correlationID` is notified data; a bare `Batch/Bulk/{id}` or
  `Batch/Subscription/{SID}` GET starts a new asynchronous request (docs/pge-protocol.md):
  `ResourceUrl.starts_request` says so and such a URL is never fetched.
- Each parameter appears at most once, spelled exactly as PG&E spells it (`correlationID`),
  with a plain value: `correlationID` letters, digits and `-` (PG&E sends UUIDs),
  `published-*` integer epoch seconds. Nothing else, no percent-encoding in the query.
- Ids are opaque (docs/espi-model.md §3: base64 with `=`, comma-formatted numbers): letters,
  digits, `_ - = , +`, and the escapes `%3D %2B %2C` of `= + ,` only. So `.`, `;` (`..;`),
  `%2e`, `%2f`, `%25` (`%252e`), `%00` and any other escape never reach PG&E.
- No trailing slash, no suffix beyond the documented resource paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ResourceRefused", "ResourceUrl", "resource_parse"]

BULK = "BULK"
SUBSCRIPTION = "SUBSCRIPTION"
USAGE_POINT = "USAGE_POINT"
RESOURCE = "RESOURCE"
READING_TYPE = "READING_TYPE"
AUTHORIZATION = "AUTHORIZATION"

_ID = r"(?:[A-Za-z0-9_]|%(?:3[Dd]|2[BbCc]))(?:[A-Za-z0-9_=,+-]|%(?:3[Dd]|2[BbCc])){0,199}"
_PATHS: list[tuple[str, re.Pattern[str]]] = [
    (BULK, re.compile(rf"Batch/Bulk/(?P<bulk>{_ID})")),
    (SUBSCRIPTION, re.compile(rf"Batch/Subscription/(?P<sid>{_ID})")),
    (USAGE_POINT, re.compile(rf"Batch/Subscription/(?P<sid>{_ID})/UsagePoint/(?P<upid>{_ID})")),
    (
        RESOURCE,
        re.compile(
            rf"Subscription/(?P<sid>{_ID})/UsagePoint"
            rf"(?:/(?P<upid>{_ID})"
            rf"(?:/MeterReading(?:/{_ID}(?:/IntervalBlock(?:/{_ID})?)?)?"
            rf"|/(?:UsageSummary|ElectricPowerUsageSummary)(?:/{_ID})?)?)?"
        ),
    ),
    (READING_TYPE, re.compile(rf"(?:ReadingType|LocalTimeParameters)/{_ID}")),
    (AUTHORIZATION, re.compile(rf"Authorization(?:/(?P<sid>{_ID}))?")),
]

_CORRELATION = re.compile(r"[A-Za-z0-9-]{1,64}")
_EPOCH = re.compile(r"[0-9]{1,12}")
_VALUE = {"correlationID": _CORRELATION, "published-min": _EPOCH, "published-max": _EPOCH}
_PUBLISHED = frozenset({"published-min", "published-max"})
_QUERY: dict[str, frozenset[str]] = {
    BULK: frozenset(_VALUE),
    SUBSCRIPTION: frozenset(_VALUE),
    USAGE_POINT: _PUBLISHED,
    RESOURCE: _PUBLISHED,
    READING_TYPE: frozenset(),
    AUTHORIZATION: frozenset(),
}


class ResourceRefused(ValueError):
    """The URL is outside the grammar. `reason`: `unsupported_resource` (path) or `bad_query`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResourceUrl:
    kind: str
    subscription_id: str = ""
    bulk_id: str = ""
    usage_point_id: str = ""
    correlation_id: str = ""

    @property
    def starts_request(self) -> bool:
        """A GET here asks PG&E for new data (202, a notification follows) instead of
        downloading notified data: a Batch URL without a correlationID."""
        return self.kind in (BULK, SUBSCRIPTION) and not self.correlation_id

    @property
    def subscription_root(self) -> bool:
        """The subscription's own data resources: the Batch feed of the whole subscription or
        of one of its usage points. A 403 to a freshly refreshed customer token here means the
        consent no longer covers us; a 403 anywhere else may only mean data outside the
        granted scope (docs/pge-protocol.md), which says nothing about the consent."""
        return self.kind in (SUBSCRIPTION, USAGE_POINT) and bool(self.subscription_id)


def _query(kind: str, query: str) -> dict[str, str]:
    if not query:
        return {}
    allowed = _QUERY[kind]
    params: dict[str, str] = {}
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        if not sep or name not in allowed:
            raise ResourceRefused("bad_query", f"query parameter {name[:40]!r} not allowed here")
        if name in params:
            raise ResourceRefused("bad_query", f"query parameter {name!r} repeated")
        if not _VALUE[name].fullmatch(value):
            raise ResourceRefused("bad_query", f"query parameter {name!r} has a malformed value")
        params[name] = value
    if "correlationID" in params and len(params) > 1:
        # PG&E's notifications carry the correlationID alone (docs/pge-protocol.md).
        raise ResourceRefused("bad_query", "correlationID comes alone")
    return params


def resource_parse(url: str, *, api_base: str) -> ResourceUrl:
    """The kind and ids of `url`, or `ResourceRefused`. Does no I/O. Call it after the
    allow-list: `api_base`'s host is not checked again here."""
    base_path = urlsplit(api_base).path
    if not base_path.endswith("/"):
        base_path += "/"
    parts = urlsplit(url)
    if not parts.path.startswith(base_path) or parts.fragment:
        raise ResourceRefused("unsupported_resource", "not under PG&E's API base")
    relative = parts.path[len(base_path) :]
    for kind, pattern in _PATHS:
        match = pattern.fullmatch(relative)
        if match is None:
            continue
        params = _query(kind, parts.query)
        groups = match.groupdict()
        return ResourceUrl(
            kind=kind,
            subscription_id=groups.get("sid") or "",
            bulk_id=groups.get("bulk") or "",
            usage_point_id=groups.get("upid") or "",
            correlation_id=params.get("correlationID", ""),
        )
    raise ResourceRefused(
        "unsupported_resource", "not a documented PG&E resource path (docs/pge-protocol.md)"
    )
