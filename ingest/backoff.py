"""Retry delays: capped exponential backoff with full jitter (docs/reliability.md R5, test 37).

Full jitter (a uniform draw in [0, min(cap, base * 2**n)]) spreads the retries of many
fetches that failed together (a PG&E 503 burst) instead of sending them back in lock-step
against PG&E's ~1 request/second vendor-wide budget.
"""

from __future__ import annotations

import random

# Delays come from a CSPRNG-free source on purpose: they are not secrets.
_random = random.Random()  # noqa: S311


def backoff_ceiling(*, retry: int, base: float, cap: float) -> float:
    """The largest delay the `retry`-th retry (0-based) may wait: min(cap, base * 2**retry)."""
    if retry < 0:
        raise ValueError("retry must be >= 0")
    # Cap the exponent first: 2**retry overflows a float long before it matters.
    return min(cap, base * (2 ** min(retry, 62)))


def backoff_delay(
    *,
    retry: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before the `retry`-th retry (0-based), full jitter.

    A `Retry-After` from PG&E (429/503) is a floor: never come back before it says, but never
    wait longer than `cap` either (a countdown must stay below the broker's visibility timeout).
    """
    draw = (rng or _random).uniform(0, backoff_ceiling(retry=retry, base=base, cap=cap))
    if retry_after is not None and retry_after > 0:
        draw = max(draw, min(retry_after, cap))
    return draw
