"""ingest.publish: services publish by registered task name; the names never change (messages
queued before an upgrade and beat's rows carry them); a broker outage is a False, not a raise."""

from __future__ import annotations

import logging

import pytest
from celery import current_app

from ingest import publish, tasks

# The registered names as they were before the tasks' Python names gained `_task`: a queued
# message or a beat row from an older install must still find its task.
REGISTERED = {
    "ingest.notification_process": tasks.notification_process_task,
    "ingest.fetch_run": tasks.fetch_run_task,
    "ingest.subscription_request": tasks.subscription_request_task,
    "ingest.daily_data_request": tasks.daily_data_request_task,
    "ingest.sweep_stuck": tasks.sweep_stuck_task,
    "ingest.customer_data_purge": tasks.customer_data_purge_task,
    "ingest.gap_audit": tasks.gap_audit_task,
    "ingest.pipeline_prune": tasks.pipeline_prune_task,
    "ingest.readings_partitions_ahead": tasks.readings_partitions_ahead_task,
}


def test_the_registered_task_names_are_unchanged():
    for name, task in REGISTERED.items():
        assert task.name == name
        assert current_app.tasks[name] is task._get_current_object()  # shared_task: a proxy
    assert {publish.NOTIFICATION_PROCESS, publish.FETCH_RUN} <= set(REGISTERED)


def test_each_publish_names_its_task_queue_and_options(published):
    assert publish.notification_enqueue(notification_id=7)
    assert publish.fetch_enqueue(fetch_id=8)
    assert publish.fetch_enqueue(fetch_id=9, countdown=12.5)
    assert publish.authorizations_poll_enqueue()
    assert published.messages == [
        # No publish retry: the webhook answers PG&E at once; the RECEIVED row is the retry.
        ("ingest.notification_process", [7], {"queue": "ingest", "retry": False}),
        ("ingest.fetch_run", [8], {"queue": "pge_fetch", "countdown": None}),
        ("ingest.fetch_run", [9], {"queue": "pge_fetch", "countdown": 12.5}),
        ("customers.authorizations_poll", [], {"queue": "default"}),
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda: publish.notification_enqueue(notification_id=1),
        lambda: publish.fetch_enqueue(fetch_id=2, countdown=3.0),
        publish.authorizations_poll_enqueue,
    ],
)
def test_a_broker_outage_is_logged_and_returned_as_false(monkeypatch, caplog, call):
    def broker_down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    with caplog.at_level(logging.WARNING, logger="ingest.publish"):
        assert call() is False
    assert "broker unavailable" in caplog.text
