"""What a PG&E resource URL is, and whether a token may be sent to it.

The allow-list itself is the client's (`gascap.pge.urls.UrlPolicy`: scheme, host, port and
path prefix of the configured API base, no userinfo or encoding tricks); the grammar of each
resource kind is `gascap.pge.resources`. On top of both, ingest decides per origin:

- a URL named by a notification may be `Batch/Bulk/{our BulkID}?correlationID=…` (client
  token), `Batch/Subscription/{SID}?correlationID=…` or a single resource under
  `Subscription/{SID}/UsagePoint…` (that subscription's customer token), or an Authorization
  notice (no fetch: the Authorization poll looks); a bare Batch URL starts a new request at
  PG&E and is never fetched (docs/pge-protocol.md, "Data APIs");
- the token is chosen strictly by the authorization the URL names (docs/reliability.md R2,
  threat T3).
"""

from __future__ import annotations

from django.conf import settings

from gascap.pge import resources
from gascap.pge.resources import ResourceRefused, ResourceUrl
from gascap.pge.urls import UrlPolicy

__all__ = [
    "NOTIFIED_KINDS",
    "STARTS_REQUEST_REFUSAL",
    "ResourceRefused",
    "ResourceUrl",
    "fetch_kind",
    "resource_parse",
    "url_check",
    "url_policy",
]

# What a notification may name (issue 10; docs/pge-protocol.md "Notifications"). The
# synchronous UsagePoint batch and ReadingType/LocalTimeParameters are built or followed by
# gascap itself, never taken from a notification.
NOTIFIED_KINDS = frozenset(
    {resources.BULK, resources.SUBSCRIPTION, resources.RESOURCE, resources.AUTHORIZATION}
)

# Why a Batch URL without a correlationID is recorded SKIPPED `no_correlation`, never fetched:
# a GET there asks PG&E for new data (docs/pge-protocol.md, "Data APIs"). Checked when a
# notification names it and again when a fetch row of it runs (a row made another way).
STARTS_REQUEST_REFUSAL = "A Batch URL without a correlationID starts a new request at PG&E"

# The Fetch.Kind a grammar kind is stored as (the synchronous UsagePoint batch is fetched with
# the subscription's token like the subscription's own batch).
_FETCH_KINDS = {
    resources.BULK: "BULK",
    resources.SUBSCRIPTION: "SUBSCRIPTION",
    resources.USAGE_POINT: "SUBSCRIPTION",
    resources.RESOURCE: "RESOURCE",
    resources.READING_TYPE: "READING_TYPE",
    resources.AUTHORIZATION: "AUTHORIZATION",
}


def url_policy() -> UrlPolicy:
    return UrlPolicy(api_base=settings.GASCAP_PGE_API_BASE, token_url=settings.GASCAP_PGE_TOKEN_URL)


def url_check(url: str) -> None:
    """Raise `PgeUrlRefused` unless `url` is under PG&E's API base. No I/O."""
    url_policy().check(url)


def resource_parse(url: str) -> ResourceUrl:
    """The grammar's reading of an allow-listed URL, or `ResourceRefused`. A Bulk URL must name
    our own BulkID (the third-party id, docs/pge-protocol.md): another one is refused."""
    parsed = resources.resource_parse(url, api_base=settings.GASCAP_PGE_API_BASE)
    if parsed.kind == resources.BULK and parsed.bulk_id != str(settings.GASCAP_PGE_THIRD_PARTY_ID):
        raise ResourceRefused("foreign_bulk_id", "Batch/Bulk names another third party's BulkID")
    return parsed


def fetch_kind(resource: ResourceUrl) -> str:
    return _FETCH_KINDS[resource.kind]
