"""Property tests for `parse_batchlist` (reliability-bar 67 in pytest form): whatever the bytes,
the answer is a list of URL strings or a `BatchListRejected` with a known reason, and the
parser never opens a connection (the attacker listener sees none)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gascap.pge.batchlist import BATCHLIST_REASONS, BatchListRejected, parse_batchlist
from tests.fuzz.conftest import CANARY, FUZZ
from tests.fuzz.payloads import AttackerListener, batchlist_body, batchlist_seed, hostile_variants
from tests.fuzz.strategies import mutated

SEED = batchlist_seed()
URL = "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/{n}"


def outcome(data: bytes, **kwargs: int) -> list[str] | BatchListRejected:
    """The parser's answer; any exception other than `BatchListRejected` fails the test."""
    try:
        urls = parse_batchlist(data, **kwargs)
    except BatchListRejected as exc:
        assert exc.reason in BATCHLIST_REASONS, exc.reason
        return exc
    assert isinstance(urls, list) and urls, urls
    assert all(isinstance(u, str) and u and u == u.strip() for u in urls), urls
    assert len(set(urls)) == len(urls), "URLs are not distinct"
    return urls


def test_the_repaired_pge_sample_parses() -> None:
    # The mutations start from a body the parser accepts, else they would test nothing.
    assert outcome(SEED) == [
        "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/50916"
        "?correlationID=0b2479f3-eec7-4a15-b46b-8f90c647e21e",
        "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/50916"
        "?correlationID=20e3358c-457c-4cb3-ba99-57819d2145af",
    ]


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_urls_or_a_typed_rejection(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(
    mutated(st.just(SEED) | st.builds(lambda n: batchlist_body([URL.format(n=n)]), st.integers()))
)
def test_mutated_batchlists_give_urls_or_a_typed_rejection(data: bytes) -> None:
    outcome(data)


def test_truncation_at_every_offset_is_rejected() -> None:
    body = SEED.rstrip()
    for offset in range(len(body)):
        result = outcome(body[:offset])
        assert isinstance(result, BatchListRejected), offset
        assert result.reason in ("malformed", "empty"), (offset, result.reason)


@FUZZ
@given(
    count=st.integers(0, 1200),
    limit=st.integers(1, 600),
    prefix=st.sampled_from(["ns0", "espi", ""]),
    tag=st.sampled_from(["resources", "resource"]),
)
def test_resource_counts_are_capped(count: int, limit: int, prefix: str, tag: str) -> None:
    body = batchlist_body([URL.format(n=n) for n in range(count)], prefix=prefix, tag=tag)
    result = outcome(body, max_resources=limit)
    if count == 0:
        assert isinstance(result, BatchListRejected) and result.reason == "empty"
    elif count > limit:
        assert isinstance(result, BatchListRejected) and result.reason == "too_many"
    else:
        assert result == [URL.format(n=n) for n in range(count)]


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-16", "utf-16-le", "latin-1", "shift_jis", "utf-7", "bogus"]
)
def test_declared_encodings_never_escape_as_other_errors(encoding: str) -> None:
    # Found by this suite: "shift_jis"/"utf-7" raised ValueError, "bogus" LookupError.
    text = SEED.decode().replace('encoding="UTF-8"', f'encoding="{encoding}"')
    try:
        data = text.encode(encoding)
    except LookupError:
        data = text.encode()
    result = outcome(data)
    if encoding in ("utf-8", "utf-16", "latin-1"):
        assert isinstance(result, list) and len(result) == 2
    elif encoding in ("shift_jis", "utf-7", "bogus"):
        assert isinstance(result, BatchListRejected) and result.reason == "malformed"


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b""])
def test_a_utf8_bom_is_accepted(bom: bytes) -> None:
    assert len(outcome(bom + SEED)) == 2  # type: ignore[arg-type]


def test_hostile_payloads_are_refused_or_harmless(
    attacker: AttackerListener, canary_file: Path
) -> None:
    variants = hostile_variants(SEED, attacker_url=attacker.url, canary_path=str(canary_file))
    for name, data in variants.items():
        result = outcome(data)
        if name.startswith("dtd_"):
            assert isinstance(result, BatchListRejected), name
            assert result.reason == "dtd", (name, result.reason)
            assert CANARY not in str(result)
        else:
            # XInclude and schemaLocation are plain markup to a BatchList reader: accepted,
            # never fetched (the listener check runs after the test).
            assert isinstance(result, list) and len(result) == 2, (name, result)
            assert not any(attacker.url in u for u in result)


@FUZZ
@given(st.data())
def test_mutated_hostile_payloads_stay_typed(data: st.DataObject) -> None:
    variants = hostile_variants(SEED, attacker_url="http://127.0.0.1:9", canary_path="/nonexistent")
    body = data.draw(mutated(st.sampled_from(sorted(variants.values()))))
    outcome(body)
