"""The PG&E call budget: caps and windows, the priority reserves, and `PgeBudgetGate`, the
`gascap.pge.gate.CallGate` that `gascap.pge_settings.pge_client()` gives every client.

PG&E allows about 1 request/s per vendor, 2,000 calls/hour and 20,000 calls/day per client id;
PG&E's day resets at 5 p.m. Pacific (docs/pge-protocol.md, "Rate limits"). Hours are clock
hours (UTC); the day runs from 17:00 to 17:00 America/Los_Angeles (DST-aware).

Priorities (`gascap.pge.gate.Priority`): a customer waiting on the consent callback may use the
whole cap; fetches of notified data may use it while `GASCAP_PGE_BUDGET_RESERVE_CONSENT` of it
remains; scheduled work (daily requests, gap fills, polls) only while that reserve and
`GASCAP_PGE_BUDGET_RESERVE_NOTIFIED` remain. A call that does not fit raises `BudgetExhausted`
with the start of the next window: the caller records the wait and resumes then.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from gascap.pge.gate import BudgetExhausted, CallKind, Priority
from gascap.pge_budget.counters import CounterStore, Reservation, counter_store
from gascap.pge_budget.pacing import RateLimitTimeout, pge_request_slot

logger = logging.getLogger(__name__)

PGE_DAY_ZONE = ZoneInfo("America/Los_Angeles")
PGE_DAY_RESET = time(17, 0)  # 5 p.m. Pacific (docs/pge-protocol.md)
_UNLIMITED = 10**12
HOUR_TTL = 3 * 3600
DAY_TTL = 3 * 86400


@dataclass(frozen=True)
class BudgetCaps:
    per_hour: int
    per_day: int
    reserve_consent: float
    reserve_notified: float

    def share(self, priority: Priority) -> float:
        """The part of each cap work of `priority` may use."""
        if priority <= Priority.CONSENT:
            return 1.0
        if priority == Priority.NOTIFIED:
            return max(0.0, 1.0 - self.reserve_consent)
        return max(0.0, 1.0 - self.reserve_consent - self.reserve_notified)

    def for_priority(self, priority: Priority) -> tuple[int, int]:
        share = self.share(priority)
        # (+1e-9: 2000 x 0.65 is 1299.999… in floating point)
        hour = math.floor(self.per_hour * share + 1e-9) if self.per_hour > 0 else _UNLIMITED
        day = math.floor(self.per_day * share + 1e-9) if self.per_day > 0 else _UNLIMITED
        return hour, day


def budget_caps() -> BudgetCaps:
    """The caps from settings (read at call time: tests and operators may change them)."""
    return BudgetCaps(
        per_hour=int(settings.GASCAP_PGE_BUDGET_PER_HOUR),
        per_day=int(settings.GASCAP_PGE_BUDGET_PER_DAY),
        reserve_consent=float(settings.GASCAP_PGE_BUDGET_RESERVE_CONSENT),
        reserve_notified=float(settings.GASCAP_PGE_BUDGET_RESERVE_NOTIFIED),
    )


@dataclass(frozen=True)
class Window:
    key: str
    start: datetime
    end: datetime


def hour_window(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return Window(key=f"h:{start:%Y%m%dT%H}", start=start, end=start + timedelta(hours=1))


def pge_day(now: datetime) -> date:
    """The PG&E day `now` falls in, named by the date it started (at 17:00 Pacific)."""
    local = now.astimezone(PGE_DAY_ZONE)
    return local.date() if local.time() >= PGE_DAY_RESET else local.date() - timedelta(days=1)


def day_window(now: datetime) -> Window:
    day = pge_day(now)
    start = datetime.combine(day, PGE_DAY_RESET, tzinfo=PGE_DAY_ZONE)
    end = datetime.combine(day + timedelta(days=1), PGE_DAY_RESET, tzinfo=PGE_DAY_ZONE)
    return Window(key=f"d:{day:%Y%m%d}", start=start.astimezone(UTC), end=end.astimezone(UTC))


class PgeBudgetGate:
    """Count the call in its hour and PG&E day (refusing it when the priority's allowance is
    used), then take a pacing slot. `clock` and `pace` are seams for the day simulation."""

    def __init__(
        self,
        *,
        store: CounterStore | None = None,
        clock: Callable[[], datetime] = timezone.now,
        pace: Callable[[], None] = pge_request_slot,
    ) -> None:
        self.store = store or counter_store()
        self.clock = clock
        self.pace = pace

    def before_call(self, kind: CallKind, priority: Priority) -> None:
        now = self.clock()
        hour, day = hour_window(now), day_window(now)
        caps = budget_caps().for_priority(Priority(priority))
        reservation = Reservation(
            hour_key=hour.key,
            day_key=day.key,
            kind=str(kind),
            caps=caps,
            ttls=(HOUR_TTL, DAY_TTL),
        )
        code, hour_used, day_used = self.store.reserve(reservation)
        if code:
            window, retry_at, used, cap = (
                ("hour", hour.end, hour_used, caps[0])
                if code == 1
                else ("day", day.end, day_used, caps[1])
            )
            # A day that is full may also end the hour after it: wait for the later of both.
            raise BudgetExhausted(
                kind=str(kind),
                priority=int(priority),
                window=window,
                retry_at=retry_at,
                used=used,
                cap=cap,
            )
        try:
            self.pace()
        except RateLimitTimeout:
            self.store.release(reservation)
            raise

    def after_call(self, kind: CallKind, status: int | None) -> None:
        # PG&E pushing back (429) or no answer at all: worth seeing next to the counts.
        if status is None or status == 429:
            self.store.add(
                key=hour_window(self.clock()).key,
                field=f"status_{status or 'none'}",
                ttl=HOUR_TTL,
            )


# Work refused together is spread over this many seconds after its window opens (pacing
# serialises it anyway; the spread keeps the queue from waking all at once).
WAIT_SPREAD_SECONDS = 60.0


def budget_wait_countdown(
    *, exc: BudgetExhausted, now: datetime, rng: random.Random | None = None
) -> float:
    """Seconds until refused work looks again: when its window opens, but a Celery countdown
    longer than the broker's visibility timeout would be redelivered early (docs/
    reliability.md test 32), so a long wait is taken in steps of at most half that timeout.
    Waking early costs no PG&E call (the budget refuses locally)."""
    spread = (rng or random).uniform(0, WAIT_SPREAD_SECONDS)
    longest = float(settings.CELERY_VISIBILITY_TIMEOUT) / 2
    return max(1.0, min(exc.wait_seconds(now) + spread, longest))


def budget_wait_record(*, work: str, exc: BudgetExhausted, now: datetime) -> None:
    """Count a piece of work that waits for the budget (shown by `manage.py pge_budget`), in
    the PG&E day the gate refused it in (the one its wait ends, by the gate's own clock)."""
    refused_in = day_window(exc.retry_at - timedelta(microseconds=1))
    counter_store().add(key=refused_in.key, field=f"wait_{work}", ttl=DAY_TTL)
    logger.info("%s waits for the PG&E call budget: %s", work, exc)


@dataclass
class BudgetUsage:
    hour: Window
    day: Window
    hour_calls: dict[str, int]
    day_calls: dict[str, int]
    hour_total: int
    day_total: int
    waits: dict[str, int]
    caps: BudgetCaps


def budget_usage(*, now: datetime) -> BudgetUsage:
    """Calls used this hour and this PG&E day, by kind, and the work waiting today."""
    store = counter_store()
    hour, day = hour_window(now), day_window(now)
    hour_raw, day_raw = store.read(hour.key), store.read(day.key)
    kinds = {str(k) for k in CallKind}
    return BudgetUsage(
        hour=hour,
        day=day,
        hour_calls={k: v for k, v in hour_raw.items() if k in kinds or k.startswith("status_")},
        day_calls={k: v for k, v in day_raw.items() if k in kinds},
        hour_total=hour_raw.get("_total", 0),
        day_total=day_raw.get("_total", 0),
        waits={k[5:]: v for k, v in day_raw.items() if k.startswith("wait_")},
        caps=budget_caps(),
    )


def throttle_hit(
    *, scope: str, subject: str, limit: int, window_seconds: int, now: datetime
) -> bool:
    """Count one request of `subject` (e.g. a client address) in the current fixed window of
    `window_seconds`; True while it stays within `limit` (0 = no limit)."""
    if limit <= 0 or window_seconds <= 0:
        return True
    slot = int(now.timestamp()) // window_seconds
    count = counter_store().add(
        key=f"throttle:{scope}:{slot}", field=subject[:100], ttl=window_seconds + 60
    )
    return count <= limit
