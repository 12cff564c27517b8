"""The one module where XML parsers are constructed (reliability rule R3).

- ESPI documents (feeds and entries from PG&E, possibly hundreds of MB) go through lxml with
  entity resolution, DTD loading and network access off and `huge_tree` off, plus an explicit
  DOCTYPE refusal: hardened lxml alone accepts an internal DTD silently.
- Small XML answers (an Authorization entry, a token answer in XML, ServiceStatus) use the
  same hardened lxml parser on bytes already capped by the transport.
- The BatchList notification body is parsed with defusedxml (`forbid_dtd=True`), which refuses
  a DTD before expanding anything.

Every failure is an `XmlRejected` that says why and, where the parser knows, where;
`parse_small_answer` turns one in a small answer from PG&E into `PgePermanentError("malformed")`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from typing import IO, Any
from xml.etree.ElementTree import Element

import defusedxml
import defusedxml.ElementTree
from lxml import etree

from gascap.pge.errors import PgePermanentError

# The options R3 names. `huge_tree=False` keeps libxml2's limits: text nodes over 10 MB and
# nesting deeper than 256 are refused instead of exhausting memory or the stack.
HARDENED_LXML_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}

# libxml2 (without huge_tree) caps depth at 256 and text nodes at 10 MB but has no cap on the
# attributes of one element; expat has none either. ESPI, Atom and BatchList elements carry a
# handful (href, rel, xsi:type), so an element with more is hostile (docs/reliability.md test 18: a
# 100,000-attribute element must be refused, not accepted).
MAX_ATTRIBUTES = 256


class XmlRejected(ValueError):
    """A document that is not well-formed, or that carries a DTD / entities we refuse.

    `reason` is a short machine code: "dtd", "malformed" or "empty" here; the ESPI reader
    adds "invalid" (a well-formed value that is not a number or out of the storable range)
    and "not_reading_type".
    """

    def __init__(
        self, reason: str, message: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{message}{where}")


def _refuse_doctype(element: etree._Element) -> None:
    docinfo = element.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XmlRejected("dtd", "XML with a DOCTYPE declaration is refused")


def refuse_attribute_flood(element: Any) -> None:
    """XmlRejected when `element` carries more than MAX_ATTRIBUTES attributes."""
    _refuse_attributes(element)


def _refuse_attributes(element: Any) -> None:
    if len(element.attrib) > MAX_ATTRIBUTES:
        line = getattr(element, "sourceline", None)
        raise XmlRejected(
            "malformed", f"An element with more than {MAX_ATTRIBUTES} attributes", line=line
        )


def _syntax_error(exc: etree.XMLSyntaxError) -> XmlRejected:
    line, column = exc.position if exc.position else (None, None)
    message = exc.msg or str(exc)
    # lxml ends its message with ", line L, column C"; XmlRejected adds the position itself.
    message = re.sub(r",? line \d+, column \d+$", "", message)
    if "Document is empty" in message:
        return XmlRejected("empty", "The document is empty", line=line, column=column)
    return XmlRejected("malformed", f"Malformed XML: {message}", line=line, column=column)


@contextmanager
def espi_events(
    source: IO[bytes] | str, *, tag: str | Iterable[str] | None = None
) -> Iterator[Iterator[tuple[str, etree._Element]]]:
    """Stream ("end", element) pairs from an ESPI document with the hardened options:
    `with espi_events(f, tag=...) as events: for _, element in events: ...`.

    The caller clears elements it has consumed so memory stays flat. The DOCTYPE check runs on
    the first event (the DTD, if any, is parsed by then) and again at the end, in case the
    `tag` filter matched nothing. The events come straight from lxml's C iterator (`chain`),
    with no Python frame per event: on a 3.5-million-reading feed a generator wrapper alone
    cost several percent. Only the
    first element and the root get the attribute-count check here; the caller checks the
    elements it treats as rare (entries, blocks) with `refuse_attribute_flood`.
    XMLSyntaxError raised while the caller iterates becomes XmlRejected.
    """
    context = etree.iterparse(source, events=("end",), tag=tag, **HARDENED_LXML_OPTIONS)
    try:
        first = next(context, None)
        if first is not None:
            _refuse_doctype(first[1])
            _refuse_attributes(first[1])
            yield chain((first,), context)
        else:
            yield iter(())
        if context.root is not None:
            _refuse_doctype(context.root)
            _refuse_attributes(context.root)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from None


def parse_small_document(data: bytes) -> etree._Element:
    """Parse a small, already size-capped XML answer into an element tree (hardened lxml)."""
    parser = etree.XMLParser(**HARDENED_LXML_OPTIONS)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc) from None
    if root is None:
        raise XmlRejected("empty", "The document is empty")
    _refuse_doctype(root)
    for element in root.iter():
        _refuse_attributes(element)
    return root


def parse_small_answer(data: bytes, *, what: str) -> etree._Element:
    """`parse_small_document` for an answer PG&E sent (`what`: "token answer", ...): one that is
    not usable XML is PG&E's permanent, `malformed` error, not worth a retry."""
    try:
        return parse_small_document(data)
    except XmlRejected as exc:
        raise PgePermanentError(
            f"{what} is not usable XML: {exc.reason}", code="malformed"
        ) from None


def parse_batchlist_document(data: bytes) -> Element:
    """Parse a notification body with defusedxml: a DTD is refused before anything expands."""
    try:
        root = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DTDForbidden:
        raise XmlRejected("dtd", "XML with a DOCTYPE declaration is refused") from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise XmlRejected("dtd", "XML entities and external references are refused") from None
    except defusedxml.ElementTree.ParseError as exc:
        line, column = exc.position if getattr(exc, "position", None) else (None, None)
        reason = "empty" if not data.strip() else "malformed"
        raise XmlRejected(reason, f"Malformed XML: {exc}", line=line, column=column) from None
    except (ValueError, LookupError) as exc:
        # Found by fuzzing (tests/fuzz): expat raises ValueError for a declared multi-byte
        # encoding ("shift_jis", "utf-7") and LookupError for an unknown one ("bogus") instead
        # of a ParseError. The body is untrusted, so these are malformed input, not crashes.
        # (defusedxml's own refusals are ValueErrors too, but were caught above.)
        raise XmlRejected(
            "malformed", f"Malformed XML: unsupported encoding ({str(exc)[:100]})"
        ) from None
    for element in root.iter():
        _refuse_attributes(element)
    return root
