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
