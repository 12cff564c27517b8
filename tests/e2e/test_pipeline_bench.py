"""`make bench-pipeline` at a small size: the whole stack (sandbox scale mode over mTLS,
gunicorn, two Celery workers, PostgreSQL, Redis) ingests a day of 50 customers through Bulk,
split into several correlation documents, and stores every reading exactly once.

Its own database (`_pipeline_ci`) and Redis database, so a bench run alongside is untouched.
No timing is asserted (CI machines vary): the figures are the bench's, checked for shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_a_day_of_50_customers_is_stored_exactly_once():
    out = subprocess.run(
        [
            sys.executable, "bench/pipeline_bench.py", "--size", "50", "--per-document", "20",
            "--timeout", "120", "--db-suffix", "_pipeline_ci", "--redis-db", "14",
        ],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["exactly_once"] is True
    assert figures["readings"] == figures["expected_readings"] > 50 * 96
    # 50 customers, 20 per document: one BatchList naming three documents, each fetched once.
    assert figures["pge_calls"]["bulk_request"] == 1
    assert figures["pge_calls"]["bulk_document"] == figures["fetches"] == 3
    assert figures["fetches_not_ingested"] == []
    assert figures["webhook_probes"] > 0 and set(figures["webhook_statuses"]) == {"200"}
    assert set(figures["peak_rss_mb"]) == {"bench_and_sandbox", "web", "worker_1", "worker_2"}
    assert all(value > 0 for value in figures["peak_rss_mb"].values())
    assert figures["ratio"] > 0
