"""Issue 10 §2: a simulated PG&E day with 10,000 active consents stays under PG&E's caps
(2,000 calls/hour, 20,000/day), with the figures the README quotes ("PG&E call budget").

`auto` picks Bulk for 10,000 consents and the day costs a few thousand calls, mostly the new
consents' history. Forced per-subscription (30,000 calls wanted), the caps still hold: what
does not fit waits for the next window, customers at the consent callback never wait, and
nothing fails. The figures print as JSON (last line) with `pytest -s`.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from gascap.pge_budget.budget import PGE_DAY_ZONE
from ingest.budget_plan import daily_request_mode
from tests.pge_budget.simulation import simulate_day

CONSENTS = 10_000
# A PG&E day starts at 5 p.m. Pacific.
DAY_START = datetime(2026, 6, 1, 17, 0, tzinfo=PGE_DAY_ZONE)


@pytest.fixture
def caps(settings):
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 2000
    settings.GASCAP_PGE_BUDGET_PER_DAY = 20000
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0.05
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0.30
    settings.GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE = 0.5
    settings.GASCAP_INGEST_DAILY_REQUEST_MODE = "auto"
    return settings


def _under_the_caps(report) -> None:  # type: ignore[no-untyped-def]
    assert report.day_total <= 20_000
    assert max(report.calls_by_hour) <= 2_000
    assert sum(report.calls_by_hour) == report.day_total
    assert report.consent_callbacks_waited == 0
    # Every call was paced at 1/s: an hour can hold no more than 3,600.
    assert len(report.calls_by_hour) == 24


def test_a_day_of_10000_consents_in_auto_mode_stays_far_under_the_caps(caps, tmp_path):
    mode = daily_request_mode(consents=CONSENTS)
    assert mode == "bulk"
    report = simulate_day(consents=CONSENTS, mode=mode, tmp_path=tmp_path, start=DAY_START)
    print(json.dumps({"simulated_day": report.as_dict()}))
    _under_the_caps(report)
    assert report.unfinished == {}  # everything done the same day
    assert report.waits == {}
    assert report.calls_by_kind["token_code"] == 50
    assert report.calls_by_kind["data_request"] == 1 + 50 * 25
    assert report.day_total < 5_000


def test_a_day_of_10000_consents_per_subscription_waits_instead_of_breaking_the_caps(
    caps, tmp_path
):
    report = simulate_day(
        consents=CONSENTS, mode="subscription", tmp_path=tmp_path, start=DAY_START
    )
    print(json.dumps({"simulated_day": report.as_dict()}))
    _under_the_caps(report)
    # 30,000 calls were wanted: scheduled work used its share, the rest waits for tomorrow.
    assert report.waits["data_request"] > 0
    assert report.unfinished.get("data_request", 0) > 0
    assert "consent_callback" not in report.unfinished
    # Scheduled work never ate the reserves kept for notified data and consents.
    scheduled_share = int(20_000 * (1 - 0.05 - 0.30))
    requested = report.calls_by_kind["data_request"] + report.calls_by_kind["token_refresh"]
    assert requested <= scheduled_share + 1  # + the poll's client token
