"""Hypothesis strategies: structured mutations of real documents.

A mutation keeps most of a real body and breaks one thing the way a buggy or hostile sender
would: truncation, a deleted or duplicated range, an injected token (markup, entity, DTD,
CDATA, NUL, invalid UTF-8), a changed namespace or element name, an unbound prefix, a
re-encoding or BOM, or a hostile number in a reading field.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

from tests.fuzz.payloads import ATOM_NS, ESPI_NS

SNIPPETS = (
    b"<",
    b">",
    b"</",
    b"/>",
    b"<x>",
    b"</x>",
    b"&amp;",
    b"&lt;",
    b"&undefined;",
    b"&#0;",
    b"&#x110000;",
    b"&#65;",
    b"<![CDATA[",
    b"]]>",
    b"<!-- c -->",
    b"<?pi x?>",
    b'<!DOCTYPE a [<!ENTITY e "e">]>',
    b'<!ENTITY e SYSTEM "file:///etc/hostname">',
    b"&e;",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b'"',
    b"'",
    b' a="1"',
    b' xmlns="urn:other"',
    b' xmlns:ns0="urn:other"',
    b"nsX:",
    b"\r\n",
    b"\t",
    b"9" * 30,
)
NAMESPACES = (
    "urn:other",
    ESPI_NS + "/",
    ESPI_NS.upper(),
    "http://naesb.org/espi/1_1",
    ATOM_NS,
    ESPI_NS,
    "",
)
NAMES = (
    b"IntervalReading",
    b"IntervalBlock",
    b"timePeriod",
    b"start",
    b"duration",
    b"value",
    b"entry",
    b"content",
    b"feed",
    b"BatchList",
    b"resources",
    b"resource",
    b"Authorization",
    b"status",
    b"link",
)
NUMBERS = (
    "0",
    "-1",
    "-3600",
    "1.5",
    "1e9",
    "1e999999999",
    "-1e999999999",
    "NaN",
    "Infinity",
    "9" * 30,
    "9" * 5000,
    "²",
    "١٢٣",
    "--1",
    "0x10",
    "1_000",
    " 42 ",
    "",
    "253402300800",
    "9223372036854775808",
    "32768",
)
ENCODINGS = ("utf-8", "utf-16", "utf-16-le", "latin-1", "ascii", "bogus", "shift_jis", "utf-7")
_NUMERIC_TEXT = re.compile(rb">(-?[0-9][0-9.]*)<")


@st.composite
def mutation(draw: st.DrawFn, body: bytes) -> bytes:
    """One structured change to `body`."""
    size = len(body)
    kind = draw(
        st.sampled_from(
            (
                "truncate",
                "delete",
                "duplicate",
                "insert",
                "flip",
                "namespace",
                "rename",
                "prefix",
                "encoding",
                "bom",
                "number",
            )
        )
    )
    at = draw(st.integers(0, size))
    if kind == "truncate":
        return body[:at]
    if kind == "delete":
        return body[:at] + body[at + draw(st.integers(1, 64)) :]
    if kind == "duplicate":
        end = min(size, at + draw(st.integers(1, 400)))
        return body[:end] + body[at:end] + body[end:]
    if kind == "insert":
        snippet = draw(st.sampled_from(SNIPPETS) | st.binary(min_size=1, max_size=8))
        return body[:at] + snippet + body[at:]
    if kind == "flip":
        if not size:
            return body
        at = min(at, size - 1)
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    if kind == "namespace":
        old = draw(st.sampled_from((ESPI_NS, ATOM_NS))).encode()
        new = draw(st.sampled_from(NAMESPACES)).encode()
        return body.replace(old, new, draw(st.integers(1, 3)))
    if kind == "rename":
        old = draw(st.sampled_from(NAMES))
        new = draw(st.sampled_from(NAMES) | st.just(b"Other"))
        return body.replace(old, new, draw(st.integers(1, 4)))
    if kind == "prefix":
        return body.replace(b"ns0:", b"nsZ:", 1).replace(b"espi:", b"espiZ:", 1)
    if kind == "encoding":
        encoding = draw(st.sampled_from(ENCODINGS))
        text = body.decode("utf-8", errors="replace")
        text = re.sub(r"^\ufeff?<\?xml[^>]*\?>", "", text)
        declared = f'<?xml version="1.0" encoding="{encoding}"?>' + text
        try:
            return declared.encode(encoding)
        except (LookupError, UnicodeEncodeError):
            return declared.encode("utf-8")
    if kind == "bom":
        bom = draw(
            st.sampled_from((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))
        )
        return bom + body
    # "number": a hostile value in place of one numeric text node.
    matches = list(_NUMERIC_TEXT.finditer(body))
    if not matches:
        return body
    match = draw(st.sampled_from(matches))
    number = draw(st.sampled_from(NUMBERS)).encode()
    return body[: match.start(1)] + number + body[match.end(1) :]


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes], max_mutations: int = 3) -> bytes:
    body = draw(seeds)
    for _ in range(draw(st.integers(1, max_mutations))):
        body = draw(mutation(body))
    return body
