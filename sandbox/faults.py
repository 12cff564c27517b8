"""Faults on demand: what can go wrong at PG&E, injected per customer or globally.

A fault has a kind, an optional subscription id (None: every request), an optional count
(`times`, None: until cleared) and the endpoint it applies to ("api": the resource API,
"token": the token endpoint, "notify": notification delivery). The bodies of the hostile
faults are generated in a streaming way so a gzip bomb or an oversized feed never sits in
the sandbox's memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = (
    "http_503",  # N x 503 Service Unavailable
    "slow",  # answer after `seconds`
    "rate_limit",  # 429 with Retry-After: `seconds`
    "expired_token",  # 403 once although the token is valid
    "revoked",  # consent revoked: 403, and the Authorization shows status 0
    "duplicate_notification",  # POST the BatchList twice
    "notify_before_202",  # the notification arrives before the 202 answer
    "malformed_xml",  # a body that is not well-formed
    "oversized",  # a well-formed body of `size` bytes
    "gzip_bomb",  # Content-Encoding: gzip, tiny on the wire, `size` bytes inflated
    "redirect",  # 302 to another host
    # The connection reset without an answer (TCP RST after the request was read): what a
    # load balancer or a crashed upstream does. A transport fault, so no PG&E source is
    # needed for it; the client must treat it as transient (no HTTP status).
    "reset",
)
ENDPOINTS = ("api", "token", "notify")
DEFAULT_ENDPOINT = {"duplicate_notification": "notify", "notify_before_202": "notify"}
DEFAULT_SIZE = 64 * 1024 * 1024
DEFAULT_REDIRECT = "https://attacker.invalid/GreenButtonConnect/espi/1_1/resource/"


class FaultError(ValueError):
    """A fault description that cannot be used."""


@dataclass(frozen=True)
class Fault:
    kind: str
    subscription_id: str | None = None
    times: int | None = 1
    seconds: float = 2.0
    size: int = DEFAULT_SIZE
    location: str = DEFAULT_REDIRECT
    endpoint: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if not self.endpoint:
            object.__setattr__(self, "endpoint", DEFAULT_ENDPOINT.get(self.kind, "api"))
        if self.endpoint not in ENDPOINTS:
            raise FaultError(f"unknown endpoint {self.endpoint!r}; known: {', '.join(ENDPOINTS)}")
        if self.times is not None and self.times < 1:
            raise FaultError("times must be at least 1 (or null for until cleared)")
        if self.seconds < 0 or self.size < 0:
            raise FaultError("seconds and size must not be negative")

    def matches(self, subscription_id: str | None, endpoint: str) -> bool:
        if self.endpoint != endpoint:
            return False
        return self.subscription_id is None or self.subscription_id == subscription_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        allowed = {"kind", "subscription_id", "times", "seconds", "size", "location", "endpoint"}
        unknown = set(data) - allowed
        if unknown:
            raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise FaultError("a fault needs a kind")
        try:
            return cls(**data)
        except TypeError as exc:
            raise FaultError(str(exc)) from None


_FEED_HEAD = (
    b'<ns1:feed xmlns:ns0="http://naesb.org/espi" xmlns:ns1="http://www.w3.org/2005/Atom">\n'
)
_FEED_TAIL = b"</ns1:feed>\n"
_CHUNK = 1024 * 1024


def padded_feed(size: int) -> Iterator[bytes]:
    """A well-formed, empty Atom feed padded with whitespace to `size` bytes, streamed."""
    remaining = max(0, size - len(_FEED_HEAD) - len(_FEED_TAIL))
    yield _FEED_HEAD
    filler = b" " * _CHUNK
    while remaining > 0:
        step = min(remaining, _CHUNK)
        yield filler[:step]
        remaining -= step
    yield _FEED_TAIL


def gzip_bomb(size: int) -> Iterator[bytes]:
    """`padded_feed(size)` gzip-compressed as it is produced (about 1000:1 on the wire)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    for chunk in padded_feed(size):
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def malformed(body: bytes) -> bytes:
    """The first part of a real answer, cut mid-element and with an undefined entity."""
    return body[: max(len(body) // 2, 1)] + b"<ns0:value>&undefined;</ns0:val"
