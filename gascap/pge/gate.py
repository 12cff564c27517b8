"""The call gate: the one hook every request `PgeClient` sends passes through, so a budget kept
outside this package (Redis or a local file, `gascap/pge_budget.py`) can pace, count and refuse
calls without `gascap.pge` importing Django.

PG&E allows about 1 request/s per vendor, 2,000 calls/hour and 20,000 calls/day per client id
(docs/pge-protocol.md, "Rate limits"). A gate's `before_call(kind, priority)` runs before the
request leaves and may block (pacing) or raise `BudgetExhausted` (the call does not fit the
window for that priority); `after_call(kind, status)` runs once the answer (or the failure)
is known. A client built without a gate (the seed SDK classes) sends ungated.

The priority of a call is the priority of the work it serves, so the code that starts a piece
of work sets it once (`call_priority(...)`) and every call below it, token refreshes
included, inherits it.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

__all__ = [
    "BudgetExhausted",
    "CallGate",
    "CallKind",
    "Priority",
    "call_priority",
    "current_priority",
]


class CallKind(enum.StrEnum):
    """What a call to PG&E is, for the per-kind counters."""

    TOKEN_CODE = "token_code"  # noqa: S105  (a kind name) authorization-code exchange
    TOKEN_REFRESH = "token_refresh"  # noqa: S105
    TOKEN_CLIENT = "token_client"  # noqa: S105  client credentials
    AUTHORIZATION_GET = "authorization_get"
    AUTHORIZATION_DELETE = "authorization_delete"
    SERVICE_STATUS = "service_status"
    DATA_REQUEST = "data_request"  # asynchronous Batch/Subscription or Batch/Bulk request
    FETCH = "fetch"  # GET of notified data, a synchronous UsagePoint, a ReadingType


class Priority(enum.IntEnum):
    """Who waits on the call; lower is more urgent. When the budget is short, each priority
    may only spend it while the reserve of the more urgent ones remains."""

    CONSENT = 0  # a customer waiting on the consent callback
    NOTIFIED = 1  # fetching data PG&E notified
    SCHEDULED = 2  # daily data requests, gap fills, the Authorization poll


class BudgetExhausted(Exception):
    """The call does not fit the budget left for its priority: nothing was sent. The work
    waits until `retry_at` (the start of the next hour or PG&E day); it has not failed."""

    def __init__(
        self, *, kind: str, priority: int, window: str, retry_at: datetime, used: int, cap: int
    ) -> None:
        super().__init__(
            f"PG&E call budget: {window} allowance for priority {Priority(priority).name} "
            f"used ({used}/{cap}); {kind} waits until {retry_at.isoformat()}"
        )
        self.kind = kind
        self.priority = priority
        self.window = window
        self.retry_at = retry_at
        self.used = used
        self.cap = cap

    def wait_seconds(self, now: datetime) -> float:
        return max(0.0, (self.retry_at - now).total_seconds())


class CallGate(Protocol):
    def before_call(self, kind: CallKind, priority: Priority) -> None:
        """Block until the call may go, or raise `BudgetExhausted`."""

    def after_call(self, kind: CallKind, status: int | None) -> None:
        """The call ended: `status` is PG&E's HTTP status, None when no answer came."""


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "gascap_pge_call_priority", default=Priority.NOTIFIED
)


def current_priority() -> Priority:
    """The priority of the work running now (NOTIFIED when no work declared one)."""
    return _priority.get()


@contextmanager
def call_priority(priority: Priority) -> Iterator[None]:
    """Every PG&E call made inside the block serves work of `priority`."""
    token = _priority.set(Priority(priority))
    try:
        yield
    finally:
        _priority.reset(token)
