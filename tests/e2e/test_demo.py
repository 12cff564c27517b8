"""`make demo` as CI runs it: three customers consent on the sandbox over real mutual TLS, the
sandbox notifies, a real Celery worker process fetches, parses and stores.

On the services setup (DATABASE_URL / REDIS_URL) the demo gets a database and a Redis
database of its own, so it shares no rows or queues with the rest of the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _demo_env(tmp_path: Path) -> tuple[dict[str, str], str | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASCAP_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    database = None
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        import psycopg

        database = f"gascap_demo_{uuid.uuid4().hex[:8]}"
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = f"{base}/{database}"
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/3"
    return env, database


def _drop(database: str) -> None:
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.mark.e2e
@pytest.mark.timeout(400)
def test_demo_runs_the_whole_job_end_to_end(tmp_path: Path) -> None:
    env, database = _demo_env(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "gascap.demo"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=360,
        )
    finally:
        if database:
            _drop(database)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    engine = "postgresql" if database else "sqlite3"
    assert f"database django.db.backends.{engine}" in output
    assert ("broker redis" if os.environ.get("REDIS_URL") else "broker filesystem") in output
    rows = {
        m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4))
        for m in re.finditer(
            r"^(electric|solar|gas)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.*)$", output, re.M
        )
    }
    assert set(rows) == {"electric", "solar", "gas"}, output[-4000:]
    for key, (usage_points, readings, _totals) in rows.items():
        assert usage_points == 1, key
        assert readings > 0, key
    assert "kWh delivered" in rows["electric"][2]
    assert "kWh delivered" in rows["solar"][2] and "kWh received" in rows["solar"][2]
    assert "therm" in rows["gas"][2]
    # Daily gas readings, 15-minute electric: per day, electric has 96x the gas count.
    assert rows["electric"][1] > 50 * rows["gas"][1]
