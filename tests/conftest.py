"""Shared fixtures: service availability (PostgreSQL, Redis) and sample files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

FIXTURES = Path(__file__).parent / "fixtures"
REQUIRE_SERVICES = os.environ.get("GASCAP_REQUIRE_SERVICES") == "1"


def _require(marker: str, available: bool, what: str) -> None:
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (GASCAP_REQUIRE_SERVICES=1) but not configured")
    pytest.skip(f"{what} not configured")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres"):
        vendor = settings.DATABASES["default"]["ENGINE"]
        _require("postgres", vendor.endswith("postgresql"), "PostgreSQL (DATABASE_URL)")
    if item.get_closest_marker("redis"):
        _require("redis", bool(os.environ.get("REDIS_URL")), "Redis (REDIS_URL)")


@pytest.fixture
def fixture_path():
    def _path(name: str) -> Path:
        return FIXTURES / name

    return _path


@pytest.fixture(autouse=True)
def pge_budget_fresh(settings):
    """Every test starts with an empty PG&E call budget (counters live in Redis or a file under
    var/ and would otherwise carry over between tests and runs) and without the 1 request/s
    pacing; tests of the budget and of pacing set their own values."""
    from gascap.pge_budget.counters import counter_store

    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0
    counter_store().clear()
    yield
    counter_store().clear()
