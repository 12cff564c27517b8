"""What a log line is about: the request id, the Celery task id and the notification / fetch /
subscription ids known where it was written, kept in contextvars and copied onto every log
record by `LogContextFilter` (installed on the console handler by the settings).

Who sets them: `gascap.middleware.RequestIdMiddleware` (request id), the Celery signals below
(task id; the id argument of `ingest.notification_process` / `ingest.fetch_run` /
`ingest.subscription_request`; the request id the publisher carried in a message header), and a
one-line `log_context_set(...)` in the service that learns an id later (the webhook learns
the notification id once the row exists; a fetch learns its subscription). Contextvars are
per thread and per asyncio task, so concurrent requests never mix their ids.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "FIELDS",
    "LogContextFilter",
    "current",
    "log_context",
    "log_context_set",
]

FIELDS = ("request_id", "task_id", "notification_id", "fetch_id", "subscription_id")
REQUEST_ID_HEADER = "gascap_request_id"  # Celery message header carrying the web request id

_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"gascap_{name}", default=None) for name in FIELDS
}


def current() -> dict[str, str]:
    """The ids known here (only those set)."""
    values = {name: var.get() for name, var in _vars.items()}
    return {name: value for name, value in values.items() if value is not None}


def log_context_set(**ids: object) -> None:
    """Set ids for the rest of this context (a request, a task run). Unknown names raise."""
    for name, value in ids.items():
        _vars[name].set(None if value is None or value == "" else str(value))


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Set ids for a block, restoring what was there before."""
    tokens = [
        (_vars[name], _vars[name].set(None if value in (None, "") else str(value)))
        for name, value in ids.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def _clear() -> None:
    for var in _vars.values():
        var.set(None)


def request_context_clear(**_: Any) -> None:
    """`request_finished`: the request's ids end with it (the thread serves another next)."""
    _clear()


class LogContextFilter(logging.Filter):
    """Copies the context ids onto each record (as attributes; None when unknown), so the
    JSON formatter writes them and the plain one may name them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _vars.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


# --- Celery ------------------------------------------------------------------------------
# The first positional argument of these tasks is the id of the row they work on
# (docs/architecture.md, "Task names").
_TASK_ID_ARGUMENT = {
    "ingest.notification_process": "notification_id",
    "ingest.fetch_run": "fetch_id",
}


def _before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = _vars["request_id"].get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _task_prerun(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    _clear()
    ids: dict[str, object] = {"task_id": task_id}
    request = getattr(task, "request", None)
    ids["request_id"] = getattr(request, REQUEST_ID_HEADER, None) or (
        (getattr(request, "headers", None) or {}).get(REQUEST_ID_HEADER)
    )
    field = _TASK_ID_ARGUMENT.get(getattr(task, "name", ""))
    if field and args:
        ids[field] = args[0]
    log_context_set(**ids)


def _task_postrun(**_: Any) -> None:
    _clear()


def celery_signals_connect() -> None:
    from celery import signals

    signals.before_task_publish.connect(_before_publish, weak=False, dispatch_uid="ops.rid")
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="ops.prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="ops.postrun")
