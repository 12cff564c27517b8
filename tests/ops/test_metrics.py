"""/metrics access (off by default; bearer token or allowed address) and what the counters and
gauges say, in one process. The multi-process scrape is tests/ops/test_metrics_e2e.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from customers.models import AuthorizationStatus
from ingest.models import Notification
from ops import metrics
from tests.builders import authorization_make, customer_make

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_off_by_default(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.GASCAP_METRICS_ENABLED = False
    settings.GASCAP_METRICS_TOKENS = ["tok-0123456789"]
    response = client.get("/metrics", headers={"Authorization": "Bearer tok-0123456789"})
    assert response.status_code == 404


def test_token_or_allowed_address(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.GASCAP_METRICS_ENABLED = True
    settings.GASCAP_METRICS_TOKENS = ["old-token-0123", "new-token-4567"]
    settings.GASCAP_METRICS_ALLOW_IPS = []
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "new-token-4567"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer old-token-0123"})
    assert ok.status_code == 200
    # An address in the allow-list needs no token; X-Forwarded-For is not believed.
    settings.GASCAP_METRICS_TOKENS = []
    settings.GASCAP_METRICS_ALLOW_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    forged = client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert forged.status_code == 401
    assert client.post("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 405


def test_gauges_read_the_database_and_counters_count(client, settings) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    settings.GASCAP_METRICS_ENABLED = True
    settings.GASCAP_METRICS_TOKENS = ["tok-0123456789"]
    customer = customer_make(display_name="c")
    authorization_make(customer=customer, status=AuthorizationStatus.NEEDS_RECONSENT)
    authorization_make(customer=customer, status=AuthorizationStatus.ACTIVE)
    Notification.objects.create(
        status=Notification.Status.REJECTED, received_at=timezone.now(), body=b"", sha256="0"
    )
    before = _samples(
        client.get("/metrics", headers={"Authorization": "Bearer tok-0123456789"}).content.decode()
    )
    metrics.readings_stored_record(new=7, updated=2)
    metrics.token_refresh_record(failure=None)
    after = _samples(
        client.get("/metrics", headers={"Authorization": "Bearer tok-0123456789"}).content.decode()
    )
    assert after[("gascap_consents", (("status", "NEEDS_RECONSENT"),))] == 1
    assert after[("gascap_consents", (("status", "REVOKED"),))] == 0
    assert after[("gascap_notifications", (("status", "REJECTED"),))] == 1
    assert after[("gascap_alerts_undelivered", ())] == 0
    new = ("gascap_readings_stored_total", (("change", "new"),))
    assert after[new] - before.get(new, 0) == 7
    refreshed = ("gascap_token_refreshes_total", (("outcome", "refreshed"),))
    assert after[refreshed] - before.get(refreshed, 0) == 1


@pytest.mark.parametrize(
    ("method", "url", "data", "kind"),
    [
        ("POST", "https://pge/token", {"grant_type": "refresh_token"}, "token_refresh"),
        ("POST", "https://pge/token", {"grant_type": "client_credentials"}, "token_client"),
        ("GET", "https://pge/r/Batch/Subscription/5/UsagePoint/1", None, "batch_subscription"),
        ("GET", "https://pge/r/Batch/Bulk/99", None, "batch_bulk"),
        ("DELETE", "https://pge/r/Authorization/5", None, "authorization_delete"),
        ("GET", "https://pge/r/ReadServiceStatus", None, "service_status"),
        ("GET", "https://pge/r/ReadingType/3", None, "reading_type"),
    ],
)
def test_pge_call_kinds(method: str, url: str, data: object, kind: str) -> None:
    assert metrics.pge_call_kind(method, url, data, "https://pge/token") == kind


def test_counter_files_are_named_by_host_and_pid_so_containers_can_share_the_directory(
    tmp_path,
) -> None:
    """docker compose shares one metrics volume between containers whose pids repeat: each
    process's file carries its host name as well, and two "containers" (two host names with
    the same pid) sum up at the scrape instead of writing one file."""
    import json
    import subprocess
    import sys

    script = (
        "import json, os, socket, sys\n"
        "socket.gethostname = lambda: sys.argv[1]\n"
        "os.getpid = lambda: 7\n"
        "from ops import metrics\n"
        "metrics.readings_stored_record(new=3, updated=0)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for host in ("web_1", "worker"):
        subprocess.run([sys.executable, "-c", script, host], check=True, env=env, cwd=REPO)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["counter_web-1-7.db", "counter_worker-7.db"], names
    reader = (
        "import json\n"
        "from prometheus_client import CollectorRegistry, generate_latest, multiprocess\n"
        "registry = CollectorRegistry()\n"
        "multiprocess.MultiProcessCollector(registry)\n"
        "print(json.dumps(generate_latest(registry).decode()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], check=True, env=env, cwd=REPO, capture_output=True
    ).stdout
    text = json.loads(out)
    assert 'gascap_readings_stored_total{change="new"} 6.0' in text, text
