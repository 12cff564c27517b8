"""Publishing ingest's work to the broker, by task name: the one module ingest's services call
to start a task, so no service imports a task module (docs/architecture.md, "Direction").

The names are the registered Celery names (`ingest/tasks.py` registers its tasks under these
constants): a message queued before an upgrade still finds its task after it, and beat's rows
keep working. Every function is safe to call after a commit: a broker outage is logged and
returned as False, never raised; the row it names stays in the database, where the sweeper
finds it (docs/reliability.md, test 11).
"""

from __future__ import annotations

import logging

from celery import current_app

logger = logging.getLogger(__name__)

# Registered task names (messages and beat rows carry these; never rename one).
NOTIFICATION_PROCESS = "ingest.notification_process"
FETCH_RUN = "ingest.fetch_run"
DATA_REQUEST_RUN = "ingest.data_request_run"
SUBSCRIPTION_REQUEST = "ingest.subscription_request"
DAILY_DATA_REQUEST = "ingest.daily_data_request"
SWEEP_STUCK = "ingest.sweep_stuck"
CUSTOMER_DATA_PURGE = "ingest.customer_data_purge"
GAP_AUDIT = "ingest.gap_audit"
PIPELINE_PRUNE = "ingest.pipeline_prune"
READINGS_PARTITIONS_AHEAD = "ingest.readings_partitions_ahead"
# customers' task, asked for when a notification names an Authorization (a consent notice).
AUTHORIZATIONS_POLL = "customers.authorizations_poll"


def notification_enqueue(*, notification_id: int) -> bool:
    """Publish `ingest.notification_process` on `ingest`, without the publish retry: the
    webhook answers PG&E at once and the committed RECEIVED row is the retry."""
    try:
        current_app.send_task(
            NOTIFICATION_PROCESS, args=[notification_id], queue="ingest", retry=False
        )
    except Exception:
        logger.warning(
            "notification %s not queued (broker unavailable); the sweeper will", notification_id
        )
        return False
    return True


def fetch_enqueue(*, fetch_id: int, countdown: float | None = None) -> bool:
    """Publish `ingest.fetch_run` on `pge_fetch` (after `countdown` seconds: a backoff or a
    budget wait); a failure leaves the row for the sweeper."""
    try:
        current_app.send_task(FETCH_RUN, args=[fetch_id], queue="pge_fetch", countdown=countdown)
    except Exception:
        logger.warning("fetch %s not queued (broker unavailable); the sweeper will", fetch_id)
        return False
    return True


def data_request_enqueue(*, data_request_id: int, countdown: float | None = None) -> bool:
    """Publish `ingest.data_request_run` on `pge_fetch` (after `countdown` seconds), without
    the publish retry; a failure leaves the row PENDING/RETRYING for the sweeper."""
    try:
        current_app.send_task(
            DATA_REQUEST_RUN,
            args=[data_request_id],
            queue="pge_fetch",
            countdown=countdown,
            retry=False,
        )
    except Exception:
        logger.warning(
            "data request %s not queued (broker unavailable); the sweeper will", data_request_id
        )
        return False
    return True


def authorizations_poll_enqueue() -> bool:
    """Ask customers for an Authorization poll (a consent change notice arrived). A lost
    message is caught up by the daily Authorization poll."""
    try:
        current_app.send_task(AUTHORIZATIONS_POLL, queue="default")
    except Exception:
        logger.warning("authorizations poll not queued (broker unavailable)")
        return False
    return True
