"""Property tests for the streaming ESPI parser (reliability-bar 68 in pytest form): whatever
the bytes, `EspiStream` yields reading rows or raises `EspiRejected` with a known reason;
every emitted reading has an integer duration > 0 and a start that is an int (a Decimal only
for fractional sources) within the range the importer can store; a truncated real document
is refused with a line number, never a shorter success."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gascap.pge.espi import (
    DURATION_MAX,
    INT64_MAX,
    INT64_MIN,
    START_MAX,
    START_MIN,
    EspiRejected,
    EspiStream,
)
from tests.fuzz.conftest import CANARY, FUZZ
from tests.fuzz.payloads import ESPI_SEEDS, AttackerListener, fixture_bytes, hostile_variants
from tests.fuzz.strategies import mutated

ESPI_REASONS = ("dtd", "malformed", "empty", "invalid")
SEEDS = {name: fixture_bytes(name) for name in ESPI_SEEDS}


def espi_outcome(data: bytes) -> list[tuple] | EspiRejected:
    """All rows of the document, or its typed rejection; anything else fails the test."""
    stream = EspiStream(io.BytesIO(data), batch_size=64)
    rows: list[tuple] = []
    try:
        for block, batch in stream.batches():
            assert 0 < len(batch) <= 64
            assert block in stream.document.blocks
            rows.extend(batch)
    except EspiRejected as exc:
        assert exc.reason in ESPI_REASONS, exc.reason
        return exc
    stream.document_series()  # resolution never raises on what the stream accepted
    for row in rows:
        start, duration, value, cost, *codes = row
        assert type(duration) is int and 0 < duration <= DURATION_MAX, row
        assert type(start) is int or (type(start) is Decimal and start % 1 != 0), row
        assert START_MIN <= start <= START_MAX, row
        assert type(value) is int and INT64_MIN <= value <= INT64_MAX, row
        assert cost is None or (type(cost) is int and INT64_MIN <= cost <= INT64_MAX), row
        assert all(c is None or (type(c) is int and -(2**15) <= c < 2**15) for c in codes), row
    assert sum(b.readings for b in stream.document.blocks) == len(rows)
    return rows


@pytest.mark.parametrize("name", ESPI_SEEDS)
def test_every_seed_parses(name: str) -> None:
    # Mutations start from bodies the parser accepts; a seed that fails would test nothing.
    result = espi_outcome(SEEDS[name])
    assert isinstance(result, list)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_rows_or_a_typed_rejection(data: bytes) -> None:
    espi_outcome(data)


@FUZZ
@given(mutated(st.sampled_from(sorted(SEEDS.values()))))
def test_mutated_documents_give_valid_rows_or_a_typed_rejection(data: bytes) -> None:
    espi_outcome(data)


def _truncated_outcome(body: bytes, offset: int) -> EspiRejected:
    result = espi_outcome(body[:offset])
    assert isinstance(result, EspiRejected), f"a document cut at byte {offset} was accepted"
    assert result.reason in ("malformed", "empty"), (offset, result.reason)
    assert result.line is not None, offset
    return result


def test_truncation_at_every_offset_of_a_pge_bulk_body_is_rejected_with_a_line() -> None:
    body = SEEDS["pge_smd_2019_electric_hourly_bulk_1day.xml"].rstrip()
    for offset in range(len(body)):
        _truncated_outcome(body, offset)


@FUZZ
@given(st.data())
def test_truncation_of_any_sample_is_rejected_with_a_line(data: st.DataObject) -> None:
    body = SEEDS[data.draw(st.sampled_from(ESPI_SEEDS))].rstrip()
    _truncated_outcome(body, data.draw(st.integers(0, len(body) - 1)))


def test_hostile_payloads_are_refused_or_harmless(
    attacker: AttackerListener, canary_file: Path
) -> None:
    body = SEEDS["pge_smd_2019_electric_hourly_bulk_1day.xml"]
    expected = espi_outcome(body)
    variants = hostile_variants(body, attacker_url=attacker.url, canary_path=str(canary_file))
    for name, data in variants.items():
        result = espi_outcome(data)
        if name.startswith("dtd_"):
            assert isinstance(result, EspiRejected), name
            assert result.reason in ("dtd", "malformed"), (name, result.reason)
            assert CANARY not in str(result)
        else:
            # Neither XInclude nor schemaLocation is processed: the same readings, no fetch.
            assert result == expected, name


@FUZZ
@given(st.data())
def test_mutated_hostile_payloads_stay_typed(data: st.DataObject) -> None:
    body = SEEDS["savagedata_burlington_electric_60min_anonymized.xml"]
    variants = hostile_variants(body, attacker_url="http://127.0.0.1:9", canary_path="/nonexistent")
    espi_outcome(data.draw(mutated(st.sampled_from(sorted(variants.values())))))
