"""Issue 10 §2: the budget gate — caps per hour and per PG&E day (5 p.m. Pacific), counted by
kind, priority reserves, atomic across threads and processes (Redis, or the SQLite file when
embedded), and wired into every client `gascap.pge_settings` builds."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from gascap.pge.gate import BudgetExhausted, CallKind, Priority
from gascap.pge_budget import counters
from gascap.pge_budget.budget import (
    PgeBudgetGate,
    budget_caps,
    budget_wait_countdown,
    day_window,
    hour_window,
    pge_day,
)
from gascap.pge_budget.counters import FileCounterStore, RedisCounterStore
from gascap.pge_budget.pacing import RateLimitTimeout


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path) -> FileCounterStore:
    return FileCounterStore(tmp_path / "budget.sqlite3")


def _gate(store, clock) -> PgeBudgetGate:  # type: ignore[no-untyped-def]
    return PgeBudgetGate(store=store, clock=clock, pace=lambda: None)


@pytest.mark.parametrize(
    ("utc", "day", "day_end"),
    [
        # Summer (PDT, UTC-7): 17:00 Pacific is 00:00 UTC.
        ("2026-07-01T23:59:59", "2026-06-30", "2026-07-02T00:00:00"),
        ("2026-07-02T00:00:00", "2026-07-01", "2026-07-03T00:00:00"),
        # Winter (PST, UTC-8): 17:00 Pacific is 01:00 UTC.
        ("2026-12-02T00:59:59", "2026-11-30", "2026-12-02T01:00:00"),
        ("2026-12-02T01:00:00", "2026-12-01", "2026-12-03T01:00:00"),
        # The day DST ends (2026-11-01) is 25 hours long.
        ("2026-11-01T00:30:00", "2026-10-31", "2026-11-02T01:00:00"),
    ],
)
def test_the_pge_day_resets_at_5_pm_pacific(utc, day, day_end):
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert pge_day(now).isoformat() == day
    assert day_window(now).end == datetime.fromisoformat(day_end).replace(tzinfo=UTC)


def test_the_hourly_cap_holds_and_the_wait_ends_at_the_next_hour(store, settings):
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 5
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0
    clock = Clock(datetime(2026, 3, 2, 10, 59, 0, tzinfo=UTC))
    gate = _gate(store, clock)
    for kind in (CallKind.TOKEN_REFRESH, CallKind.FETCH, CallKind.FETCH, CallKind.DATA_REQUEST):
        gate.before_call(kind, Priority.SCHEDULED)
    gate.before_call(CallKind.AUTHORIZATION_DELETE, Priority.NOTIFIED)
    with pytest.raises(BudgetExhausted) as refused:
        gate.before_call(CallKind.FETCH, Priority.CONSENT)
    assert refused.value.window == "hour"
    assert refused.value.retry_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert refused.value.wait_seconds(clock.now) == 60
    hour = store.read(hour_window(clock.now).key)
    assert hour == {
        "_total": 5,
        "token_refresh": 1,
        "fetch": 2,
        "data_request": 1,
        "authorization_delete": 1,
    }
    clock.now += timedelta(minutes=1)  # the next hour
    gate.before_call(CallKind.FETCH, Priority.SCHEDULED)
    assert store.read(day_window(clock.now).key)["_total"] == 6


def test_the_daily_cap_waits_for_the_next_pge_day(store, settings):
    settings.GASCAP_PGE_BUDGET_PER_DAY = 3
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0
    clock = Clock(datetime(2026, 3, 2, 20, 0, tzinfo=UTC))  # 12:00 PST
    gate = _gate(store, clock)
    for hours in range(3):
        clock.now = datetime(2026, 3, 2, 20 + hours, 0, tzinfo=UTC)
        gate.before_call(CallKind.FETCH, Priority.NOTIFIED)
    with pytest.raises(BudgetExhausted) as refused:
        gate.before_call(CallKind.FETCH, Priority.CONSENT)
    assert refused.value.window == "day"
    assert refused.value.retry_at == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 17:00 PST
    clock.now = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    gate.before_call(CallKind.FETCH, Priority.SCHEDULED)


def test_lower_priorities_leave_the_reserves_to_higher_ones(store, settings):
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 20
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0.1  # 2 calls only consents may use
    settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = 0.25  # 5 more scheduled work may not use
    assert budget_caps().for_priority(Priority.SCHEDULED)[0] == 13
    gate = _gate(store, Clock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)))
    granted = {p: 0 for p in Priority}
    for priority in (Priority.SCHEDULED, Priority.NOTIFIED, Priority.CONSENT):
        while True:
            try:
                gate.before_call(CallKind.FETCH, priority)
            except BudgetExhausted:
                break
            granted[priority] += 1
    assert granted == {Priority.SCHEDULED: 13, Priority.NOTIFIED: 5, Priority.CONSENT: 2}


def test_a_call_that_never_got_a_pacing_slot_is_not_counted(store, settings):
    def no_slot() -> None:
        raise RateLimitTimeout("no slot")

    clock = Clock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    gate = PgeBudgetGate(store=store, clock=clock, pace=no_slot)
    with pytest.raises(RateLimitTimeout):
        gate.before_call(CallKind.FETCH, Priority.NOTIFIED)
    assert store.read(hour_window(clock.now).key).get("_total", 0) == 0


def test_pge_pushback_is_counted_next_to_the_calls(store):
    clock = Clock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    gate = _gate(store, clock)
    gate.after_call(CallKind.FETCH, 429)
    gate.after_call(CallKind.FETCH, None)
    gate.after_call(CallKind.FETCH, 200)
    assert store.read(hour_window(clock.now).key) == {"status_429": 1, "status_none": 1}


def _race(store, settings, threads: int = 8, tries: int = 15) -> int:  # type: ignore[no-untyped-def]
    settings.GASCAP_PGE_BUDGET_PER_HOUR = 50
    settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT = 0
    gate = _gate(store, Clock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)))
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(tries):
            try:
                gate.before_call(CallKind.FETCH, Priority.CONSENT)
            except BudgetExhausted:
                continue
            with lock:
                granted.append(1)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return len(granted)


def test_the_file_store_never_grants_past_the_cap_under_contention(store, settings):
    assert _race(store, settings) == 50


@pytest.mark.redis
def test_the_redis_store_never_grants_past_the_cap_under_contention(settings):
    store = RedisCounterStore(os.environ["REDIS_URL"])
    store.clear()
    try:
        assert _race(store, settings) == 50
    finally:
        store.clear()


def test_redis_down_counts_locally(settings, tmp_path):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.VAR_DIR = tmp_path
    counters._stores.clear()
    try:
        gate = PgeBudgetGate(
            clock=lambda: datetime(2026, 3, 2, 10, 0, tzinfo=UTC), pace=lambda: None
        )
        gate.before_call(CallKind.FETCH, Priority.NOTIFIED)
        local = FileCounterStore(tmp_path / "pge-budget.sqlite3")
        assert local.read("h:20260302T10") == {"_total": 1, "fetch": 1}
    finally:
        counters._stores.clear()


def test_redis_down_and_no_usable_file_is_a_transient_error(settings, tmp_path):
    """Neither store answers: the caller retries later (a fetch goes RETRYING, not FAILED)."""
    from gascap.pge.errors import PgeTransientError

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.VAR_DIR = tmp_path
    blocker = tmp_path / "pge-budget.sqlite3"
    blocker.mkdir()  # a directory where the file should be
    counters._stores.clear()
    try:
        with pytest.raises(PgeTransientError) as caught:
            counters.counter_store().add(key="h:20260302T10", field="fetch", ttl=3600)
        assert caught.value.code == "budget_store_unavailable"
    finally:
        blocker.rmdir()  # the suite's budget reset runs on this store after the test
        counters._stores.clear()


def test_a_fresh_file_opened_while_another_process_writes_it_waits_instead_of_failing(
    tmp_path, monkeypatch
):
    """Issue 17 (seen in CI): when Redis stops, every worker opens the fallback file in the same
    second. SQLite refuses the switch to WAL at once ("database is locked", no busy wait) while
    another connection holds a write lock on a fresh file; opening must wait for it."""
    import sqlite3

    path = tmp_path / "pge-budget.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)  # another process's first write
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")
    retried, ended = threading.Event(), threading.Event()
    real_pause = counters._busy_pause

    def pause(seconds: float) -> None:
        retried.set()
        ended.set()
        real_pause(seconds)

    monkeypatch.setattr(counters, "_busy_pause", pause)
    outcome: list[object] = []

    def first_use() -> None:
        try:
            outcome.append(FileCounterStore(path).add(key="h:20260302T10", field="fetch", ttl=3600))
        except Exception as exc:  # the failure under test: recorded, asserted below
            outcome.append(exc)
        ended.set()

    user = threading.Thread(target=first_use)
    user.start()
    ended.wait(timeout=10)  # the store met the lock and waits (or it already failed) ...
    holder.execute("COMMIT")  # ... and the other process finishes its write
    holder.close()
    user.join(timeout=30)
    assert outcome == [1], outcome
    assert retried.is_set()


def test_every_client_gascap_builds_is_gated():
    from gascap.pge_settings import pge_client

    assert isinstance(pge_client().gate, PgeBudgetGate)
    assert pge_client(priority=Priority.CONSENT).priority == Priority.CONSENT


def test_a_wait_never_outlasts_the_visibility_timeout(settings):
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    exc = BudgetExhausted(
        kind="fetch",
        priority=2,
        window="day",
        retry_at=now + timedelta(hours=20),
        used=1,
        cap=1,
    )
    assert 0 < budget_wait_countdown(exc=exc, now=now) <= settings.CELERY_VISIBILITY_TIMEOUT / 2
    soon = BudgetExhausted(
        kind="fetch", priority=2, window="hour", retry_at=now + timedelta(seconds=30), used=1, cap=1
    )
    assert 30 <= budget_wait_countdown(exc=soon, now=now) <= 90


def test_pge_check_reports_a_spent_budget_as_a_failed_check(settings):
    """The registration checks spend PG&E calls too; with none left they fail as a check."""
    from gascap.pge.readiness import _token_check
    from gascap.pge.tokens import TokenResponse

    def refused() -> TokenResponse:
        raise BudgetExhausted(
            kind="token_client",
            priority=1,
            window="day",
            retry_at=datetime(2030, 1, 1, tzinfo=UTC),
            used=1,
            cap=1,
        )

    result, token = _token_check("client credentials", refused)
    assert token is None and result.failed and "budget" in result.detail
