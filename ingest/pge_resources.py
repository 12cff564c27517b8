"""What a PG&E resource URL is, and whether a token may be sent to it.

The allow-list itself is the client's (`gascap.pge.urls.UrlPolicy`: scheme, host, port and
path prefix of the configured API base, no userinfo or encoding tricks). On top of it, a URL
from a notification must name a resource kind we know how to authenticate: the token is chosen
strictly by the authorization the URL names (docs/reliability.md R2, threat T3) — `Batch/Bulk/{id}`
with the client token, `Batch/Subscription/{SID}` with that subscription's customer token.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

from gascap.pge.urls import UrlPolicy

_BULK = re.compile(r"^Batch/Bulk/([^/]+)/?$")
_BATCH_SUBSCRIPTION = re.compile(r"^Batch/Subscription/([^/]+)(?:/.*)?$")
_SUBSCRIPTION = re.compile(r"^Subscription/([^/]+)(?:/.*)?$")
_READING_TYPE = re.compile(r"^(?:ReadingType|LocalTimeParameters)/[^/]+/?$")
_AUTHORIZATION = re.compile(r"^Authorization(?:/([^/]+))?/?$")


def url_policy() -> UrlPolicy:
    return UrlPolicy(api_base=settings.GASCAP_PGE_API_BASE, token_url=settings.GASCAP_PGE_TOKEN_URL)


def url_check(url: str) -> None:
    """Raise `PgeUrlRefused` unless `url` is under PG&E's API base. No I/O."""
    url_policy().check(url)


def resource_classify(url: str) -> tuple[str, str]:
    """(Fetch.Kind value, subscription id or "") for an allow-listed URL."""
    base_path = urlsplit(settings.GASCAP_PGE_API_BASE).path
    if not base_path.endswith("/"):
        base_path += "/"
    path = urlsplit(url).path
    if not path.startswith(base_path):
        return "UNKNOWN", ""
    relative = path[len(base_path) :]
    if _BULK.match(relative):
        return "BULK", ""
    if match := _BATCH_SUBSCRIPTION.match(relative):
        return "SUBSCRIPTION", match[1]
    if match := _SUBSCRIPTION.match(relative):
        return "RESOURCE", match[1]
    if _READING_TYPE.match(relative):
        return "READING_TYPE", ""
    if match := _AUTHORIZATION.match(relative):
        return "AUTHORIZATION", match[1] or ""
    return "UNKNOWN", ""
