"""/metrics over real processes: gunicorn with two workers and a Celery worker (PostgreSQL,
Redis, the sandbox over mutual TLS) do real work; a scrape, whichever web worker answers it,
counts every process's work and reads the state from the database. The same run checks that
the request id the web made for a notification is in the worker's JSON log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from ingest import data_requests
from ingest.models import Fetch, FetchAttempt, IntervalReading
from tests.support import (
    celery_worker_argv,
    free_port,
    loopback_session,
    pipeline_settled,
    process_stop,
    redis_url_with_db,
    sandbox_client_env,
    sandbox_consent,
    subprocess_database_url,
    wait_for,
    wait_until_worker_ready,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
NOTIFY_TOKEN = "notify-metrics-test-0123456789"
METRICS_TOKEN = "metrics-scrape-token-0123456789"
REDIS_DB = 12  # a Redis database of its own: no other test's worker takes these messages


@pytest.fixture
def running(tmp_path, settings) -> Iterator[dict[str, object]]:
    import redis

    from sandbox.certs import certs_ensure
    from sandbox.config import sandbox_config
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState

    redis_url = redis_url_with_db(REDIS_DB)
    redis.Redis.from_url(redis_url).flushdb()
    certs, _ = certs_ensure(directory=tmp_path / "certs")
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    sandbox = SandboxServer(
        SandboxState(),
        sandbox_config(
            cert_dir=certs.directory,
            notify_url=f"{web_url}/pge/notify/{NOTIFY_TOKEN}/",
            notify_delay=0.5,
            redirect_uris=("http://localhost:8000/consent/callback/",),
            client_id="sandbox-client",
            client_secret="sandbox-secret",
            bulk_id="99999",
        ),
    ).start()
    key = Fernet.generate_key().decode()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gascap.settings.test",
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": redis_url,
        "GASCAP_VAR_DIR": str(tmp_path / "var"),
        "GASCAP_FIELD_ENCRYPTION_KEYS": key,
        **sandbox_client_env(sandbox),
        "GASCAP_PGE_CLIENT_ID": "sandbox-client",
        "GASCAP_PGE_CLIENT_SECRET": "sandbox-secret",
        "GASCAP_PGE_THIRD_PARTY_ID": "99999",
        "GASCAP_NOTIFY_TOKEN": NOTIFY_TOKEN,
        "GASCAP_PGE_RATE_LIMIT_PER_SECOND": "5",
        "GASCAP_METRICS_ENABLED": "true",
        "GASCAP_METRICS_TOKENS": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "GASCAP_LOG_FORMAT": "json",
    }
    for name in (
        "GASCAP_FIELD_ENCRYPTION_KEYS",
        "GASCAP_PGE_API_BASE",
        "GASCAP_PGE_TOKEN_URL",
        "GASCAP_PGE_CA_BUNDLE",
        "GASCAP_PGE_CLIENT_CERT",
        "GASCAP_PGE_CLIENT_KEY",
        "GASCAP_PGE_CLIENT_ID",
        "GASCAP_PGE_CLIENT_SECRET",
    ):
        value = env[name]
        setattr(settings, name, [value] if name.endswith("KEYS") else value)

    web_log = tmp_path / "web.log"
    worker_log = tmp_path / "worker.log"
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "gascap.wsgi:application",
         "--workers", "2", "--bind", f"127.0.0.1:{web_port}", "--timeout", "30"],
        cwd=REPO, env=env, stdout=open(web_log, "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        celery_worker_argv(name="metrics", pool="prefork", concurrency=2),
        cwd=REPO, env=env, stdout=open(worker_log, "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        http = loopback_session()

        def web_up() -> bool:
            try:
                return http.get(f"{web_url}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                assert web.poll() is None, web_log.read_text()
                return False

        wait_for(web_up, what="gunicorn", timeout=60)
        wait_until_worker_ready(worker, worker_log)
        sid, _, _ = sandbox_consent(sandbox, customer_key="electric", display_name="metrics test")
        yield {
            "sandbox": sandbox,
            "web_url": web_url,
            "sid": sid,
            "metrics_dir": metrics_dir,
            "worker_log": worker_log,
            "http": http,
        }
    finally:
        process_stop(web)
        process_stop(worker)
        sandbox.stop()


def _scrape(http: requests.Session, web_url: str) -> dict[tuple[str, tuple], float]:
    response = http.get(
        f"{web_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_scrape_counts_the_work_of_every_process(running) -> None:
    from customers.models import Authorization

    http, web_url, sandbox = running["http"], running["web_url"], running["sandbox"]
    authorization = Authorization.objects.get(subscription_id=running["sid"])
    now = timezone.now()
    for days_back in (6, 3):  # two requests: two notifications, two fetches
        report = data_requests.subscription_data_request(
            authorization_id=authorization.pk,
            now=now,
            start=now - timedelta(days=days_back),
            end=now - timedelta(days=days_back - 2),
        )
        assert report.statuses == [202]
    fetches = Fetch.objects.filter(url__startswith=sandbox.api_base)
    wait_for(
        lambda: fetches.count() == 2 and pipeline_settled(fetches), what="the pipeline", timeout=90
    )
    assert set(fetches.values_list("status", flat=True)) == {Fetch.Status.INGESTED}
    for _ in range(5):  # refused deliveries leave no row: only the counter knows them
        assert http.post(f"{web_url}/pge/notify/guess/", data=b"<x/>", timeout=5).status_code == 404

    # Off the token: refused.
    assert http.get(f"{web_url}/metrics", timeout=5).status_code == 401
    wrong = http.get(f"{web_url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401

    readings = IntervalReading.objects.count()
    assert readings > 0
    ok_fetch_calls = FetchAttempt.objects.filter(fetch__in=fetches, status_code=200).count()
    scrapes = [_scrape(http, web_url) for _ in range(6)]  # either gunicorn worker answers
    counters = [{k: v for k, v in s.items() if k[0].endswith("_total")} for s in scrapes]
    assert all(c == counters[0] for c in counters), "every worker sees the same sums"
    s = scrapes[-1]
    assert s[("gascap_notifications_received_total", (("status", "200"),))] == 2
    assert s[("gascap_notifications_received_total", (("status", "404"),))] == 5
    assert s[("gascap_readings_stored_total", (("change", "new"),))] == readings
    fetch_calls = s[("gascap_pge_calls_total", (("kind", "batch_subscription"), ("status", "200")))]
    assert fetch_calls == ok_fetch_calls == 2
    assert s[("gascap_notifications", (("status", "PROCESSED"),))] == 2
    assert s[("gascap_fetches", (("status", "INGESTED"),))] == 2
    assert s[("gascap_consents", (("status", "ACTIVE"),))] == 1
    age = s[("gascap_newest_reading_age_seconds", (("commodity", "electricity"),))]
    assert 0 < age < timedelta(days=5).total_seconds()
    assert s[("gascap_broker_up", ())] == 1
    assert s[("gascap_queue_depth", (("queue", "pge_fetch"),))] == 0
    # One counter file per process that counted: the web workers and the Celery processes.
    pids = {p.name.rsplit("_", 1)[-1] for p in Path(running["metrics_dir"]).glob("counter_*.db")}
    assert len(pids) >= 2, pids

    # The request id the web made for a notification is on the worker's lines for it.
    worker_lines = [
        json.loads(line)
        for line in Path(running["worker_log"]).read_text().splitlines()
        if line.startswith("{")
    ]
    traced = [r for r in worker_lines if r.get("notification_id") and r.get("request_id")]
    assert traced, "no worker log line carried a notification id and its request id"
    fetch_lines = [r for r in worker_lines if r.get("fetch_id") and r.get("task_id")]
    assert fetch_lines
