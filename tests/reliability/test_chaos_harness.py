"""The chaos harness's own logic (bench/chaos), without starting its stack: the fault plans
have the counts issue 16 asks for, and the soak verdict and the token scan catch what they
are meant to catch (a check that cannot fail is a defect)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from bench.chaos.checks import digest, tokens_in_logs
from bench.chaos.faults import COUNTS, EXCLUSIVE, plan, soak_plan
from bench.chaos.run import soak_verdict


def test_full_plan_has_the_issue_counts_and_ci_one_of_each() -> None:
    full = Counter(f.kind for f in plan("full", 360.0, seed=1))
    assert full == {
        "redis_restart": 3,
        "redis_kill9": 1,
        "pg_restart": 2,
        "pg_kill9": 1,
        "worker_kill9": 10,
        "sandbox_burst": 4,
    }
    assert Counter(f.kind for f in plan("ci", 70.0, seed=1)) == dict.fromkeys(COUNTS["ci"], 1)


def test_service_faults_are_spaced_and_inside_the_run() -> None:
    faults = plan("full", 360.0, seed=7)
    assert all(0 < f.at < 360.0 for f in faults)
    service = [f.at for f in faults if f.kind in EXCLUSIVE]
    gaps = [b - a for a, b in itertools.pairwise(service)]
    assert min(gaps) > 360.0 / (len(service) + 1) * 0.5 - 1e-9  # never two at once


def test_soak_plan_spreads_faults() -> None:
    faults = soak_plan(30, every_minutes=3, seed=1)
    assert len(faults) == 9
    assert len({f.kind for f in faults}) == 5


def _sample(minute: float, rss: int, fds: int, pid: int = 10, sessions: int = 8) -> dict:
    return {
        "minute": minute,
        "procs": {"worker-a": {"pid": pid, "rss_kib": rss, "fds": fds}},
        "db_sessions": sessions,
    }


def test_soak_verdict_flags_growth_after_the_warm_up_only() -> None:
    flat = [_sample(m, 100_000 if m >= 5 else 50_000, 20) for m in range(10)]
    assert soak_verdict(flat) == []  # growth during the warm-up does not count
    growing = [_sample(m, 100_000 + m * 20_000, 20 + m * 3) for m in range(10)]
    problems = soak_verdict(growing)
    assert any("RSS" in p for p in problems) and any("fds" in p for p in problems)
    restarted = [
        _sample(m, 100_000 if m < 7 else 200_000, 20, pid=10 if m < 7 else 11) for m in range(10)
    ]
    assert soak_verdict(restarted) == []  # a restarted process starts a new baseline
    sessions = [_sample(m, 100_000, 20, sessions=8 + (30 if m == 9 else 0)) for m in range(10)]
    assert soak_verdict(sessions) == ["database sessions 8 -> 38"]


def test_token_scan_finds_a_token_in_a_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("GET /espi/1_1/resource/Batch/Subscription/1 Bearer abc-SECRET-token-xyz\n")
    assert tokens_in_logs({"abc-SECRET-token-xyz", "other"}, [log]) == 1
    assert tokens_in_logs({"absent-token"}, [log]) == 0


def test_digest_depends_on_every_field() -> None:
    row = ("https://x/MeterReading/1", "2025-01-01T08:00:00+00:00", 900, 42)
    assert digest([row]) != digest([(*row[:3], 43)])
    assert digest([row]) == digest([tuple(row)])
