"""Pacing: PG&E's ~1 request/second across the whole vendor account (docs/pge-protocol.md,
"Rate limits", second-hand), shared by every worker. The budget gate (`gate.py`) takes a slot
here for every HTTP call to PG&E, after the hourly/daily budget admitted it.

With Redis (REDIS_URL) a slot is a key set with `SET NX PX <interval>`: whoever sets it may
send, everyone else waits for its expiry. Embedded (no Redis) the slot is a timestamp in a
file under `var/`, guarded by an exclusive `flock`. `GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0`
turns the limiter off (unit tests do).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

REDIS_KEY = "gascap:pge:request-slot"
_redis_client = None


class RateLimitTimeout(Exception):
    """No slot within the wait limit: the caller treats it as a transient failure."""


def _interval() -> float:
    rate = float(getattr(settings, "GASCAP_PGE_RATE_LIMIT_PER_SECOND", 1.0))
    return 0.0 if rate <= 0 else 1.0 / rate


def _redis():  # type: ignore[no-untyped-def]
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5
        )
    return _redis_client


def _slot_redis(
    interval: float, deadline: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> None:
    import redis

    px = max(1, int(interval * 1000))
    client = _redis()
    while True:
        try:
            if client.set(REDIS_KEY, os.getpid(), nx=True, px=px):
                return
            wait_ms = client.pttl(REDIS_KEY)
        except redis.RedisError:
            # Redis down: keep the budget locally rather than sending unthrottled.
            logger.warning("PG&E rate limiter: Redis unavailable, pacing locally")
            sleep(interval)
            return
        if clock() >= deadline:
            raise RateLimitTimeout("no PG&E request slot within the wait limit")
        sleep(min(max(wait_ms if wait_ms and wait_ms > 0 else 10, 5), px) / 1000.0)


def _slot_file(
    interval: float, deadline: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> None:
    path = Path(settings.VAR_DIR) / "pge-request-slot"
    with open(path, "a+", encoding="ascii") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            try:
                last = float(fh.read().strip() or 0)
            except ValueError:
                last = 0.0
            wait = last + interval - time.time()
            if wait > 0:
                if clock() + wait > deadline:
                    raise RateLimitTimeout("no PG&E request slot within the wait limit")
                sleep(wait)
            fh.seek(0)
            fh.truncate()
            fh.write(repr(time.time()))
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pge_request_slot(
    *,
    max_wait: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until this process may send one request to PG&E (or raise `RateLimitTimeout`)."""
    interval = _interval()
    if interval <= 0:
        return
    if max_wait is None:
        max_wait = float(getattr(settings, "GASCAP_PGE_RATE_LIMIT_MAX_WAIT", 120.0))
    deadline = clock() + max_wait
    if settings.REDIS_URL:
        _slot_redis(interval, deadline, clock, sleep)
    else:
        _slot_file(interval, deadline, clock, sleep)
