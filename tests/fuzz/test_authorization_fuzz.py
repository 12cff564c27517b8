"""Property tests for the Authorization parser (`parse_authorizations`): whatever the bytes,
a list of `AuthorizationInfo` with well-typed fields, or `PgePermanentError(code="malformed")`;
never a bare ValueError/OverflowError and never a network connection."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gascap.pge.authorization import AuthorizationInfo, parse_authorizations
from gascap.pge.errors import PgePermanentError
from tests.fuzz.conftest import CANARY, FUZZ
from tests.fuzz.payloads import (
    AUTHORIZATION_SEED,
    AttackerListener,
    fixture_bytes,
    hostile_variants,
)
from tests.fuzz.strategies import NUMBERS, mutated

SEED = fixture_bytes(AUTHORIZATION_SEED)
FEED = b'<feed xmlns="http://www.w3.org/2005/Atom">' + SEED + SEED + b"</feed>"


def auth_outcome(data: bytes) -> list[AuthorizationInfo] | PgePermanentError:
    try:
        found = parse_authorizations(data)
    except PgePermanentError as exc:
        assert exc.code == "malformed", exc.code
        return exc
    assert isinstance(found, list)
    for info in found:
        assert isinstance(info, AuthorizationInfo)
        assert type(info.status) is int
        for moment in (
            info.authorized_start,
            info.authorized_end,
            info.published_start,
            info.published_end,
            info.expires_at,
        ):
            assert moment is None or (isinstance(moment, datetime) and moment.tzinfo), info
        assert all(isinstance(v, list) for v in info.scope_params.values())
    return found


def test_the_pge_sample_parses() -> None:
    (info,) = auth_outcome(SEED)  # type: ignore[misc]
    assert (info.status, info.subscription_id) == (1, "0")
    assert info.authorized_start is not None and info.authorized_start.year == 2015


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_authorizations_or_a_typed_error(data: bytes) -> None:
    auth_outcome(data)


@FUZZ
@given(mutated(st.sampled_from([SEED, FEED])))
def test_mutated_authorizations_give_a_typed_result(data: bytes) -> None:
    auth_outcome(data)


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("field", ["status", "duration", "start", "expires_at"])
def test_hostile_numbers_give_a_typed_result(field: str, number: str) -> None:
    # Found by this suite: "²" and "--1" passed the isdigit() guards and a 400-digit
    # millisecond duration overflowed a float division, each escaping as a bare exception.
    tag = f"<ns0:{field}>".encode()
    head, _, tail = SEED.partition(tag)
    tail = tail.split(b"<", 1)[1]
    result = auth_outcome(head + tag + number.encode() + b"<" + tail)
    if field == "status":
        # Only an ASCII integer is a status; anything else is a malformed answer.
        integer = re.fullmatch(r"-?[0-9]{1,20}", number.strip()) is not None
        assert isinstance(result, list) == integer, number


def test_hostile_payloads_are_refused_or_harmless(
    attacker: AttackerListener, canary_file: Path
) -> None:
    variants = hostile_variants(SEED, attacker_url=attacker.url, canary_path=str(canary_file))
    for name, data in variants.items():
        result = auth_outcome(data)
        if name.startswith("dtd_"):
            assert isinstance(result, PgePermanentError), name
            assert CANARY not in str(result)
        else:
            assert isinstance(result, list) and len(result) == 1, name
