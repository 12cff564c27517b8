"""docs/reliability.md R3 / tests 16 and 61: XML parsers are built in one module, with hardened
options, on library versions that have the relevant fixes."""

from __future__ import annotations

import io
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from gascap.pge import safexml

ROOT = Path(__file__).resolve().parents[2]
PARSER_CALL = re.compile(
    r"\b(xml\.etree|ElementTree|cElementTree|xml\.dom|xml\.sax|minidom|pulldom|expatbuilder"
    r"|etree\.(fromstring|parse|iterparse|XMLParser|XMLPullParser|XML)\b"
    r"|defusedxml\.\w+\.(fromstring|parse|iterparse))"
)
# The benchmark's floor is, by definition, the bare standard-library parse of the same file.
ALLOWED = {Path("gascap/pge/safexml.py"), Path("bench/espi_bench.py")}


def _production_sources() -> list[Path]:
    paths = []
    for package in ("gascap", "customers", "ingest", "bench"):
        paths += [p.relative_to(ROOT) for p in (ROOT / package).rglob("*.py")]
    return paths


def test_no_module_but_safexml_constructs_an_xml_parser() -> None:
    offenders = [
        f"{path}:{number}"
        for path in _production_sources()
        if path not in ALLOWED
        for number, line in enumerate((ROOT / path).read_text().splitlines(), 1)
        if PARSER_CALL.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, f"XML parser constructed outside safexml: {offenders}"


def test_espi_parser_uses_hardened_lxml_options() -> None:
    assert safexml.HARDENED_LXML_OPTIONS["resolve_entities"] is False
    assert safexml.HARDENED_LXML_OPTIONS["no_network"] is True
    assert safexml.HARDENED_LXML_OPTIONS["load_dtd"] is False
    assert safexml.HARDENED_LXML_OPTIONS["huge_tree"] is False


def test_batchlist_parser_is_defusedxml_forbidding_dtds() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><BatchList>&b;</BatchList>'
    )
    with pytest.raises(safexml.XmlRejected) as caught:
        safexml.parse_batchlist_document(laughs)
    assert caught.value.reason == "dtd"


def test_espi_events_refuses_a_harmless_internal_dtd() -> None:
    # Hardened lxml alone would accept this silently (docs/reliability.md test 19).
    doc = b'<?xml version="1.0"?><!DOCTYPE feed [<!ELEMENT feed ANY>]><feed><entry/></feed>'
    with pytest.raises(safexml.XmlRejected) as caught:
        with safexml.espi_events(io.BytesIO(doc)) as events:
            list(events)
    assert caught.value.reason == "dtd"


def test_malformed_xml_says_where() -> None:
    with pytest.raises(safexml.XmlRejected) as caught:
        with safexml.espi_events(io.BytesIO(b"<feed>\n  <entry>\n</feed>")) as events:
            list(events)
    assert caught.value.reason == "malformed"
    assert caught.value.line == 3


def _at_least(installed: str, floor: tuple[int, ...]) -> bool:
    parts = tuple(int(p) for p in re.findall(r"\d+", installed)[: len(floor)])
    return parts >= floor


@pytest.mark.parametrize(
    ("package", "floor"),
    [("lxml", (6, 1, 0)), ("urllib3", (2, 7, 0)), ("celery", (5, 5)), ("defusedxml", (0, 7, 1))],
)
def test_version_floors(package: str, floor: tuple[int, ...]) -> None:
    assert _at_least(version(package), floor), f"{package} {version(package)} < {floor}"


def test_django_is_the_lts_line() -> None:
    assert version("Django").startswith("5.2.")
