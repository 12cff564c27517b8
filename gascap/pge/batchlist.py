"""PG&E's notification body, an ESPI `BatchList`, parsed into the resource URLs it names.

The body is unsigned and untrusted (docs/pge-protocol.md, "Notifications"): it is parsed with the
defusedxml parser of `safexml` (a DTD is refused before anything expands), the list is capped,
and the URLs are only *returned* — checking them against the allow-list and skipping
placeholder correlation ids is the pipeline's job (`is_placeholder_correlation` helps).

`resources` is the element name; the GBA reference once used the singular `resource`
(OpenESPI-Common-java PR #96), so old senders' bodies are accepted too.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from gascap.pge.safexml import XmlRejected, parse_batchlist_document

ESPI = "http://naesb.org/espi"
BATCHLIST_TAG = f"{{{ESPI}}}BatchList"
RESOURCE_TAGS = (f"{{{ESPI}}}resources", f"{{{ESPI}}}resource")
DEFAULT_MAX_RESOURCES = 500
# PG&E's resource URLs are ~150 characters. A longer one is hostile (docs/reliability.md test 18: a
# 30 MB text node came back as one 30 MB "URL" headed for the fetch table): refused.
MAX_URL_LENGTH = 4096

BATCHLIST_REASONS = ("dtd", "malformed", "empty", "not_batchlist", "too_many")

_ZEROS = re.compile(r"^[0-]+$")


class BatchListRejected(ValueError):
    """A notification body we refuse; `reason` is one of `BATCHLIST_REASONS`."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or reason)


def parse_batchlist(data: bytes, *, max_resources: int = DEFAULT_MAX_RESOURCES) -> list[str]:
    """The distinct resource URLs of a BatchList, in document order, whitespace stripped."""
    try:
        root = parse_batchlist_document(data)
    except XmlRejected as exc:
        raise BatchListRejected(exc.reason, str(exc)) from None
    if root.tag != BATCHLIST_TAG:
        raise BatchListRejected("not_batchlist", f"root element is {root.tag[:100]!r}")
    urls: list[str] = []
    seen: set[str] = set()
    for child in root:
        if child.tag not in RESOURCE_TAGS:
            continue
        url = (child.text or "").strip()
        if not url or url in seen:
            continue
        if len(url) > MAX_URL_LENGTH:
            raise BatchListRejected(
                "malformed", f"a resource URL is longer than {MAX_URL_LENGTH} characters"
            )
        if len(urls) >= max_resources:
            raise BatchListRejected(
                "too_many", f"BatchList names more than {max_resources} resources"
            )
        seen.add(url)
        urls.append(url)
    if not urls:
        raise BatchListRejected("empty", "BatchList names no resources")
    return urls


def is_placeholder_correlation(url: str) -> bool:
    """True when the URL's `correlationID` is all zeros (some integrators skip these)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return False
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() == "correlationid" and value and _ZEROS.match(value):
            return True
    return False
