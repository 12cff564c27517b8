"""The sandbox's own small request/response types, independent of the socket server so
every endpoint can be exercised without one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""
    client_cert_subject: str | None = None
    # Filled in while the request is handled, for the request record.
    token_class: str | None = None
    subscription_id: str | None = None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8") or "null")


@dataclass
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status, json.dumps(data, indent=1).encode(), "application/json", list(headers or [])
    )


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode())


# Not an HTTP status: the server resets the connection instead of answering (fault "reset").
RESET_STATUS = 0


def connection_reset() -> Response:
    return Response(RESET_STATUS)


ATOM_XML = "application/atom+xml"
