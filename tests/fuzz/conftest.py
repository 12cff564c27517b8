"""Fixtures for the fuzz tests: the attacker listener (must see zero connections) and a
canary file a local-XXE payload points at (its content must never come back)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.payloads import AttackerListener

# One budget for every property test in the normal run: each test ≤ ~15 s and ≤ 500 examples,
# one example ≤ 1 s. Derandomized so CI is reproducible; `GASCAP_FUZZ_EXPLORE=1` draws fresh
# random examples (and more of them) for a local hunt.
EXPLORE = os.environ.get("GASCAP_FUZZ_EXPLORE") == "1"
FUZZ = settings(
    max_examples=2000 if EXPLORE else 300,
    deadline=1000,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CANARY = "gascap-fuzz-canary-7f3a"


@pytest.fixture(scope="session")
def attacker() -> Iterator[AttackerListener]:
    listener = AttackerListener().start()
    yield listener
    listener.stop()


@pytest.fixture(scope="session")
def canary_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("canary") / "canary.txt"
    path.write_text(CANARY)
    return path


@pytest.fixture(autouse=True)
def _no_connection_to_attacker(attacker: AttackerListener) -> Iterator[None]:
    before = len(attacker.connections)
    yield
    assert attacker.connections[before:] == [], "a parser opened a network connection"
