"""Regression tests for what fuzzing found, and replay of saved crash inputs.

Every file in tests/fixtures/fuzz/ is an input that once crashed, hung or exhausted memory in
a parser (atheris artifacts from bench/fuzz_parsers.py, or hypothesis finds); its name starts
with the target (`batchlist-`, `espi-`, `authorization-`). Each is replayed and must give the
parser's typed outcome within a second.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from gascap.pge.authorization import parse_authorizations
from gascap.pge.batchlist import BatchListRejected, parse_batchlist
from gascap.pge.errors import PgePermanentError
from gascap.pge.espi import EspiRejected, EspiStream, espi_read
from tests.fuzz.payloads import REGRESSIONS


def _espi(data: bytes) -> None:
    for _ in EspiStream(io.BytesIO(data)).batches():
        pass


REPLAY = {
    "batchlist": (parse_batchlist, BatchListRejected),
    "espi": (_espi, EspiRejected),
    "authorization": (parse_authorizations, PgePermanentError),
}
SAVED = sorted(p for p in REGRESSIONS.glob("*") if p.is_file() and p.name != "README.md")


def test_every_saved_input_names_a_target() -> None:
    assert all(p.name.split("-", 1)[0] in REPLAY for p in SAVED), SAVED


@pytest.mark.parametrize("path", SAVED, ids=lambda p: p.name)
def test_saved_crash_inputs_give_a_typed_outcome_quickly(path: Path) -> None:
    parse, rejected = REPLAY[path.name.split("-", 1)[0]]
    started = time.process_time()  # CPU: the machine's load does not count
    try:
        parse(path.read_bytes())
    except rejected:
        pass
    assert time.process_time() - started < 1.0


def _reading_doc(start: str = "1546329600", duration: str = "3600", value: str = "1") -> bytes:
    return (
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry><content>'
        '<IntervalBlock xmlns="http://naesb.org/espi"><IntervalReading>'
        f"<timePeriod><duration>{duration}</duration><start>{start}</start></timePeriod>"
        f"<value>{value}</value></IntervalReading></IntervalBlock></content></entry></feed>"
    ).encode()


def test_a_well_formed_reading_still_parses() -> None:
    _doc, _series, rows = espi_read(io.BytesIO(_reading_doc()))
    assert rows == [(0, (1546329600, 3600, 1, None, None, None, None, None))]


@pytest.mark.parametrize("start", ["1e999999999", "-1e999999999", "1e99"])
def test_an_exponent_start_is_refused_at_once(start: str) -> None:
    # Found by hand-fuzzing: int(Decimal("1e999999")) took 27 s; "1e999999999" never finished.
    started = time.process_time()  # CPU: the machine's load does not count
    with pytest.raises(EspiRejected) as caught:
        _espi(_reading_doc(start=start))
    assert caught.value.reason == "invalid" and caught.value.line == 1
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize("duration", ["0", "-900", "2147483648"])
def test_a_duration_that_is_no_interval_is_refused(duration: str) -> None:
    with pytest.raises(EspiRejected) as caught:
        _espi(_reading_doc(duration=duration))
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809"])
def test_a_value_beyond_64_bits_is_refused(value: str) -> None:
    with pytest.raises(EspiRejected):
        _espi(_reading_doc(value=value))


def test_a_fractional_start_is_kept_exactly() -> None:
    _doc, _series, rows = espi_read(io.BytesIO(_reading_doc(start="1546329600.5")))
    assert str(rows[0][1][0]) == "1546329600.5"


def test_an_exponent_in_a_reading_type_code_is_dropped_not_expanded() -> None:
    doc = (
        b'<entry xmlns="http://www.w3.org/2005/Atom"><link rel="self" href="/RT/1"/><content>'
        b'<ReadingType xmlns="http://naesb.org/espi"><uom>1e999999999</uom>'
        b"<powerOfTenMultiplier>-3</powerOfTenMultiplier><kind>99999</kind></ReadingType>"
        b"</content></entry>"
    )
    started = time.process_time()  # CPU: the machine's load does not count
    document, _series, _rows = espi_read(io.BytesIO(doc))
    assert time.process_time() - started < 0.5
    codes = document.reading_types["/RT/1"].codes
    # kind is stored in a smallint column: out of range is unusable, like a non-number.
    assert (codes["uom"], codes["powerOfTenMultiplier"], codes["kind"]) == (None, -3, None)


@pytest.mark.parametrize("encoding", ["shift_jis", "utf-7", "bogus-encoding"])
def test_a_batchlist_in_an_unsupported_encoding_is_malformed(encoding: str) -> None:
    body = (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        '<BatchList xmlns="http://naesb.org/espi"><resources>https://a.test/1</resources>'
        "</BatchList>"
    ).encode()
    with pytest.raises(BatchListRejected) as caught:
        parse_batchlist(body)
    assert caught.value.reason == "malformed"


def test_a_batchlist_url_of_megabytes_is_refused() -> None:
    body = (
        b'<BatchList xmlns="http://naesb.org/espi"><resources>https://a.test/'
        + b"x" * 5000
        + b"</resources></BatchList>"
    )
    with pytest.raises(BatchListRejected) as caught:
        parse_batchlist(body)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("status", "duration"), [("²", "1"), ("--1", "1"), ("1", "²"), ("1", "9" * 400)]
)
def test_authorization_numbers_never_escape_as_bare_errors(status: str, duration: str) -> None:
    doc = (
        '<entry xmlns="http://www.w3.org/2005/Atom"><content>'
        '<Authorization xmlns="http://naesb.org/espi"><authorizedPeriod>'
        f"<duration>{duration}</duration><start>1440585200000</start></authorizedPeriod>"
        f"<status>{status}</status></Authorization></content></entry>"
    ).encode()
    if status == "1":
        (info,) = parse_authorizations(doc)
        assert info.authorized_start is not None and info.authorized_end is None
    else:
        with pytest.raises(PgePermanentError) as caught:
            parse_authorizations(doc)
        assert caught.value.code == "malformed"
