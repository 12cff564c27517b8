"""docs/reliability.md test 4: PostgreSQL unavailable at receipt (docs/reliability.md R1).

The webhook answers 2xx iff the notification row is committed. With the database refusing or
silent (a stopped or SIGSTOPped server, simulated by a proxy so the shared server stays up),
gunicorn's webhook answers 503 within the connect timeout, shows no traceback and publishes
nothing; once the database is back, the next delivery is stored.
"""

from __future__ import annotations

import time

import pytest

from ingest.models import Notification
from tests.reliability.conftest import NOTIFY_TOKEN, base_env, batchlist, http

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

API = "https://localhost:8443/GreenButtonConnect/espi/1_1/resource/"
# Both the answer and the whole request must stay under this (bar: 503 within ~2 s).
DEADLINE = 2.5


def _post(url: str, body: bytes) -> tuple[int, str, float]:
    t0 = time.monotonic()
    answer = http().post(url, data=body, timeout=15)
    return answer.status_code, answer.text, time.monotonic() - t0


@pytest.mark.timeout(60)
def test_webhook_answers_503_fast_while_database_is_down(
    transactional_db, tmp_path, db_proxy, redis_db, procs
):
    env = base_env(tmp_path, "x" * 43 + "=")
    env["DATABASE_URL"] = db_proxy.url_for(env["DATABASE_URL"])
    # Production's default: a persistent connection per gunicorn worker (GASCAP_DB_CONN_MAX_AGE
    # 60) that a frozen server leaves hanging unless the settings bound it.
    env.pop("GASCAP_DB_CONN_MAX_AGE", None)
    web = procs.web(env)
    notify = f"{web}/pge/notify/{NOTIFY_TOKEN}/"

    def body(n: int) -> bytes:
        return batchlist(
            f"{API}Batch/Bulk/99999?correlationID=7e57{n:04d}-0000-4000-8000-000000000000"
        )

    stored: list[bytes] = []
    status, _, _ = _post(notify, body(0))  # warm: the worker now holds a live connection
    assert status == 200
    stored.append(body(0))

    for n, mode in enumerate(["blackhole", "refuse", "blackhole"], start=1):
        db_proxy.set_mode(mode)
        status, text, elapsed = _post(notify, body(n))
        assert status == 503, (mode, status, text[:300])
        print(f"database {mode}: 503 after {elapsed:.2f}s")
        assert elapsed < DEADLINE, f"{mode}: 503 after {elapsed:.2f}s"
        assert "Traceback" not in text and "psycopg" not in text and len(text) < 200
        db_proxy.set_mode("pass")
        # Back: the next delivery is stored at once (a new connection, no stale one reused).
        status, text, elapsed = _post(notify, body(100 + n))
        assert status == 200, (mode, "after recovery", status, text[:300])
        stored.append(body(100 + n))

    # 2xx iff committed: one row per 200, none for any 503 body.
    from ingest.models import Notification as N

    rows = {bytes(b) for b in N.objects.values_list("body", flat=True)}
    assert rows == set(stored)
    assert N.objects.count() == len(stored)
    # Nothing was published for a refused delivery: only the stored rows' messages exist.
    queued = redis_db.llen("ingest")
    assert queued == len(stored), queued
    assert Notification.objects.filter(status=Notification.Status.RECEIVED).count() == len(stored)
