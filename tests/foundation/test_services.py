"""The suite really runs against the services CI provides: PostgreSQL, and a Celery worker
subprocess consuming from Redis."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_is_postgresql() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.redis
def test_task_sent_through_redis_runs_in_a_worker_subprocess(tmp_path: Path) -> None:
    from gascap.celery import worker_argv
    from gascap.tasks import smoke

    marker_file = tmp_path / "smoke.txt"
    queue = f"smoke-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "GASCAP_SMOKE_FILE": str(marker_file)}
    worker = subprocess.Popen(
        worker_argv(queues=[queue], pool="solo", node=f"{queue}@%h"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        marker = uuid.uuid4().hex
        smoke.apply_async(args=[marker], queue=queue)
        assert _wait_for(lambda: marker_file.exists() and marker in marker_file.read_text(), 30)
        written_marker, pid = marker_file.read_text().split()
        assert written_marker == marker
        assert int(pid) not in (os.getpid(), 0)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
