"""Seeds and hostile payloads shared by the fuzz tests and `bench/fuzz_parsers.py`.

Real shapes come from `tests/fixtures/` (PG&E and other custodians' samples); the hostile
ones are reliability-bar tests 12-15: billion laughs, quadratic blowup, external and local
entities, parameter entities, an external DTD, XInclude and `xsi:schemaLocation` pointing at
a loopback "attacker" listener that must never see a connection.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REGRESSIONS = FIXTURES / "fuzz"

ESPI_NS = "http://naesb.org/espi"
ATOM_NS = "http://www.w3.org/2005/Atom"

# Small real samples: every mutation re-parses the whole body, so seeds stay under ~25 KB.
ESPI_SEEDS = (
    "pge_smd_2019_electric_hourly_bulk_1day.xml",
    "pge_smd_2020_gas_daily_therm_bulk.xml",
    "pge_cmd_2016_gas_daily_therm.xml",
    "eversource_gas_monthly_quirky.xml",
    "savagedata_burlington_electric_60min_anonymized.xml",
    "opower_nationalgrid_ma_gas_monthly_billing.xml",
    "pge_cmd_2015_usagesummary_feed.xml",
    "sce_bulk_intervalblock_15min_cost.xml",
)
AUTHORIZATION_SEED = "pge_cmd_2015_authorization_entry.xml"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def batchlist_seed() -> bytes:
    """PG&E's 2020 notification sample, repaired: the stored copy carries a literal `\\n`
    (two characters) between the declaration and the root, which makes it malformed."""
    return fixture_bytes("pge_smd_2020_notification_batchlist_malformed.xml").replace(
        b"?>\\n<", b"?>\n<"
    )


def batchlist_body(urls: list[str], *, prefix: str = "ns0", tag: str = "resources") -> bytes:
    p = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    items = "".join(f"<{p}{tag}>{u}</{p}{tag}>" for u in urls)
    return f'<?xml version="1.0"?><{p}BatchList {xmlns}="{ESPI_NS}">{items}</{p}BatchList>'.encode()


def _split_root(body: bytes) -> tuple[bytes, bytes]:
    """(XML declaration, rest) so a DOCTYPE can go between them."""
    body = body.lstrip(b"\xef\xbb\xbf")
    if body.startswith(b"<?xml"):
        end = body.index(b"?>") + 2
        return body[:end], body[end:]
    return b"", body


def _root_name(rest: bytes) -> bytes:
    start = rest.index(b"<") + 1
    while rest[start : start + 1] in (b"!", b"?"):  # comments / PIs before the root
        start = rest.index(b"<", rest.index(b">", start)) + 1
    end = start
    while rest[end : end + 1] not in (b" ", b">", b"/", b"\n", b"\t", b"\r"):
        end += 1
    return rest[start:end]


def _with_doctype(body: bytes, subset: bytes, *, reference: bytes = b"") -> bytes:
    """`body` with `<!DOCTYPE root [subset]>` before its root and `reference` (an entity
    reference) as the first content of the root element."""
    decl, rest = _split_root(body)
    name = _root_name(rest)
    doctype = b"<!DOCTYPE " + name + b" [" + subset + b"]>"
    root_end = rest.index(b">", rest.index(b"<" + name)) + 1
    return decl + doctype + rest[:root_end] + reference + rest[root_end:]


def _in_root(body: bytes, *, attribute: bytes = b"", content: bytes = b"") -> bytes:
    decl, rest = _split_root(body)
    name = _root_name(rest)
    open_at = rest.index(b"<" + name)
    root_end = rest.index(b">", open_at)
    head = rest[:root_end]
    if head.endswith(b"/"):
        head = head[:-1]
    return decl + head + attribute + rest[root_end : root_end + 1] + content + rest[root_end + 1 :]


def hostile_variants(body: bytes, *, attacker_url: str, canary_path: str) -> dict[str, bytes]:
    """Tests 12-15 applied to a valid `body`: name -> hostile document.

    Names starting with `dtd_` carry a DOCTYPE and must be refused; `xinclude` and
    `schema_location` carry none and may be accepted, but must not be fetched."""
    laughs = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    blowup = b'<!ENTITY big "' + b"x" * 50_000 + b'">'
    url = attacker_url.encode()
    return {
        "dtd_billion_laughs": _with_doctype(body, laughs, reference=b"&lol9;"),
        "dtd_quadratic_blowup": _with_doctype(body, blowup, reference=b"&big;" * 20_000),
        "dtd_external_entity": _with_doctype(
            body, b'<!ENTITY ext SYSTEM "' + url + b'/xxe">', reference=b"&ext;"
        ),
        "dtd_local_file": _with_doctype(
            body,
            b'<!ENTITY canary SYSTEM "file://' + canary_path.encode() + b'">',
            reference=b"&canary;",
        ),
        "dtd_parameter_entity": _with_doctype(
            body, b'<!ENTITY % remote SYSTEM "' + url + b'/param.dtd"> %remote;'
        ),
        "dtd_external_subset": _split_root(body)[0]
        + b"<!DOCTYPE "
        + _root_name(_split_root(body)[1])
        + b' SYSTEM "'
        + url
        + b'/ext.dtd">'
        + _split_root(body)[1],
        "dtd_internal_harmless": _with_doctype(body, b"<!ELEMENT x ANY>"),
        "xinclude": _in_root(
            body,
            content=b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="'
            + url
            + b'/xinclude.xml" parse="text"/>',
        ),
        "schema_location": _in_root(
            body,
            attribute=b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            b' xsi:schemaLocation="' + ESPI_NS.encode() + b" " + url + b'/espi.xsd"',
        ),
    }


@dataclass
class AttackerListener:
    """A loopback TCP listener that counts connections; every test expects zero."""

    port: int = 0
    connections: list[tuple[str, int]] = field(default_factory=list)
    _socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AttackerListener:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self.port = sock.getsockname()[1]
        self._socket = sock
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._socket is not None
        while True:
            try:
                conn, peer = self._socket.accept()
            except OSError:
                return
            self.connections.append(peer)
            conn.close()

    def stop(self) -> None:
        if self._socket is not None:
            self._socket.close()
