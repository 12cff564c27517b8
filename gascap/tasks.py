"""Project-level tasks: the smoke task that proves a worker consumes from the broker."""

from __future__ import annotations

import os

from celery import shared_task


@shared_task(name="gascap.smoke")
def smoke(marker: str) -> dict[str, object]:
    """Write `marker` to the file named by GASCAP_SMOKE_FILE (if set) and report the pid.

    Used by `manage.py smoke_task` and the tests to see a message cross the broker into a
    worker process: the file is written by the worker, not by the sender.
    """
    path = os.environ.get("GASCAP_SMOKE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{marker} {os.getpid()}\n")
    return {"marker": marker, "pid": os.getpid()}
