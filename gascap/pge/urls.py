"""The URL allow-list and PG&E's query-parameter formats.

A bearer token is only ever sent to PG&E's configured API base or token URL (docs/reliability.md R2,
threat T2): a notification is an unsigned hint, so every URL in it is checked here before any
network use. The rule, applied to the URL *as written* (no lenient normalisation that an
attacker could steer):

- scheme `https`; no userinfo (`user@host`); no backslash, whitespace or control characters;
  no fragment;
- host equal to the configured host after lower-casing (ASCII only, so an IDN lookalike
  never matches; a trailing dot is refused; IP literals never match a configured name);
- port absent or equal to the configured port (443 by default);
- path without percent-encoded `/`, `\\` or `.`, without `.`/`..` segments or empty
  segments, starting with the configured API base path, or equal to the token URL path (or,
  when the caller passes it, exactly PG&E's connectivity-test token URL beside it).

`published-min`/`published-max` are formatted here too, in one place: PG&E's clients send
integer epoch seconds (docs/pge-protocol.md, "Data APIs").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from gascap.pge.errors import PgeUrlRefused

_NETLOC = re.compile(r"^(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::(?P<port>[0-9]{1,5}))?$", re.I)
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c|2e)", re.I)


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    path: str
    prefix: bool  # True: any path under `path`; False: exactly `path`


def _target(url: str, *, prefix: bool) -> _Target:
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"PG&E URLs must be https with a host: {url!r}")
    host = parts.hostname.encode("idna").decode("ascii").lower()
    return _Target(host=host, port=parts.port or 443, path=parts.path or "/", prefix=prefix)


class UrlPolicy:
    """The allow-list for one configuration: the API base (a prefix) and the token URL, plus
    the registration test token URL when given (exact, like the token URL)."""

    def __init__(self, *, api_base: str, token_url: str, test_token_url: str | None = None) -> None:
        targets = [_target(api_base, prefix=True), _target(token_url, prefix=False)]
        if test_token_url:
            targets.append(_target(test_token_url, prefix=False))
        self._targets = tuple(targets)

    def check(self, url: str) -> None:
        """Raise `PgeUrlRefused` unless `url` may be sent a PG&E token. Does no I/O."""
        reason = self._refusal(url)
        if reason:
            # The URL may carry attacker-chosen text: say why, show only its first characters.
            shown = url[:120] if isinstance(url, str) else type(url).__name__
            raise PgeUrlRefused(f"URL refused ({reason}): {shown!r}", code="url_refused")

    def is_allowed(self, url: str) -> bool:
        return not self._refusal(url)

    def _refusal(self, url: object) -> str:
        if not isinstance(url, str) or not url:
            return "not a URL"
        if _FORBIDDEN_CHARS.search(url):
            return "backslash, whitespace or control character"
        try:
            parts = urlsplit(url)
        except ValueError:
            return "unparseable"
        if parts.scheme.lower() != "https":
            return "scheme is not https"
        if "#" in url:
            return "fragment"
        if "@" in parts.netloc:
            return "userinfo"
        match = _NETLOC.match(parts.netloc)
        if not match:
            return "host is not a plain DNS name"
        host = match["host"].lower()
        port = int(match["port"]) if match["port"] is not None else 443
        path = parts.path
        if _ENCODED_SEPARATOR.search(path):
            return "percent-encoded separator in path"
        segments = path.split("/")[1:]
        # A trailing slash (empty last segment) is fine; `//` inside the path is not.
        if any(s in {".", ".."} for s in segments) or "" in segments[:-1]:
            return "dot or empty segment in path"
        for target in self._targets:
            if host != target.host or port != target.port:
                continue
            if target.prefix and path.startswith(target.path):
                return ""
            if not target.prefix and path == target.path:
                return ""
        return "not under PG&E's configured API base or token URL"


def published_param(value: int | str | datetime) -> str:
    """PG&E's `published-min`/`published-max` value: integer epoch seconds.

    Accepts an int, a decimal string (as PG&E's 2015 SDK took) or an aware datetime.
    """
    if isinstance(value, bool):
        raise TypeError("published bound must be an int, a str or a datetime")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("published bound datetime must be timezone-aware")
        return str(int(value.timestamp()))
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    else:
        raise ValueError(f"published bound must be epoch seconds, got {value!r}")
    if seconds < 0:
        raise ValueError("published bound must not be negative")
    return str(seconds)


def published_params(
    published_min: int | str | datetime | None, published_max: int | str | datetime | None
) -> dict[str, str]:
    """The query parameters for a published range; either bound may be omitted (Bulk)."""
    params: dict[str, str] = {}
    if published_min is not None:
        params["published-min"] = published_param(published_min)
    if published_max is not None:
        params["published-max"] = published_param(published_max)
    return params
