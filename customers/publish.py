"""Starting ingest's work from customers by registered task name (`send_task`), after the
commit that made it due: customers never imports ingest (pyproject.toml's import-linter
contract), as ingest's services publish through `ingest/publish.py`."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def subscription_request_enqueue(*, authorization_id: int) -> None:
    """After commit, ask ingest (by task name, no import) for the subscription's data.

    A broker failure is logged, not raised: the daily data request picks the consent up.
    """

    def publish() -> None:
        try:
            current_app.send_task(
                "ingest.subscription_request", args=[authorization_id], queue="pge_fetch"
            )
        except Exception:
            logger.exception(
                "Could not enqueue the data request for authorization %s", authorization_id
            )

    transaction.on_commit(publish)
