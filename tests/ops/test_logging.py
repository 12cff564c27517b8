"""Structured logs: GASCAP_LOG_FORMAT=json writes one JSON object a line with the request,
task, notification, fetch and subscription ids known where the line was written; the request
id comes from X-Request-ID (or is made) and travels to the tasks the request queues."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops import log_context
from ops.log_context import LogContextFilter, log_context_set

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import logging, django
django.setup()
from django.test import Client
from ops.log_context import log_context
with log_context(fetch_id=17, subscription_id="SUB-1", task_id="task-abc"):
    logging.getLogger("ingest.fetches").warning("fetch %s done", 17)
logging.getLogger("ingest.fetches").info("outside any context")
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("gascap").exception("it failed")
response = Client(HTTP_HOST="localhost").get("/no-such-page",
                                             headers={"X-Request-ID": "req-from-proxy-0001"})
print("STATUS", response.status_code, response["X-Request-ID"])
"""


def _run(log_format: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GASCAP_LOG_FORMAT"}
    env["DJANGO_SETTINGS_MODULE"] = "gascap.settings.test"
    if log_format:
        env["GASCAP_LOG_FORMAT"] = log_format
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_json_format_writes_one_object_a_line_with_the_context_ids() -> None:
    done = _run("json")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    fetch_line = next(r for r in records if r["message"] == "fetch 17 done")
    assert fetch_line["level"] == "WARNING"
    assert fetch_line["logger"] == "ingest.fetches"
    assert fetch_line["fetch_id"] == "17"
    assert fetch_line["subscription_id"] == "SUB-1"
    assert fetch_line["task_id"] == "task-abc"
    assert fetch_line["request_id"] is None
    outside = next(r for r in records if r["message"] == "outside any context")
    assert outside["fetch_id"] is None and outside["task_id"] is None
    failed = next(r for r in records if r["message"] == "it failed")
    assert "ValueError: boom" in failed["exc_info"]
    # The 404 is logged by Django with the request id it answered.
    assert "STATUS 404 req-from-proxy-0001" in done.stdout
    request_lines = [r for r in records if r.get("request_id") == "req-from-proxy-0001"]
    assert request_lines, records


def test_plain_format_stays_the_default() -> None:
    done = _run(None)
    line = next(x for x in done.stderr.splitlines() if "fetch 17 done" in x)
    assert not line.startswith("{")
    assert "WARNING ingest.fetches: fetch 17 done" in line


@pytest.mark.django_db
def test_request_id_is_answered_and_a_bad_one_replaced(client) -> None:  # type: ignore[no-untyped-def]
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-12345678"})
    assert kept["X-Request-ID"] == "abc-12345678"
    hostile = client.get("/healthz", headers={"X-Request-ID": "x\r\nSet-Cookie: a=b" + "y" * 80})
    assert hostile["X-Request-ID"] != "abc-12345678"
    assert len(hostile["X-Request-ID"]) == 32 and hostile["X-Request-ID"].isalnum()
    other = client.get("/healthz")
    assert other["X-Request-ID"] != hostile["X-Request-ID"]


def test_request_id_travels_in_the_task_message_and_task_ids_are_set() -> None:
    headers: dict[str, object] = {}
    with log_context.log_context(request_id="req-1234567"):
        log_context._before_publish(headers=headers)
    assert headers == {log_context.REQUEST_ID_HEADER: "req-1234567"}

    task = SimpleNamespace(
        name="ingest.fetch_run",
        request=SimpleNamespace(gascap_request_id="req-1234567", headers=None),
    )
    log_context._task_prerun(task_id="celery-1", task=task, args=[42])
    try:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", None, None)
        LogContextFilter().filter(record)
        assert (record.task_id, record.fetch_id, record.request_id) == (  # type: ignore[attr-defined]
            "celery-1",
            "42",
            "req-1234567",
        )
        log_context_set(subscription_id="SUB-9")
        assert log_context.current()["subscription_id"] == "SUB-9"
    finally:
        log_context._task_postrun()
    assert log_context.current() == {}
