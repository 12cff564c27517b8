"""How many PG&E calls a day of data requests costs, per mode, and which mode `auto` picks.

Per subscription, each active consent costs a day (docs/pge-protocol.md, "Data APIs"):
one token refresh (customer tokens live 3600 s and are refreshed only when work needs one,
so a day later the token is always stale), one asynchronous Subscription request (a day
fits one request window) and one fetch of the data it notifies — 3 calls. Bulk costs a
client token, one Bulk request and the fetches of the Bulk URLs its notification names
(PG&E's sample BatchList names two; an estimate, not a documented count), whatever the number
of consents. Both modes add the daily Authorization poll (a client token and the feed).
`GASCAP_INGEST_DAILY_REQUEST_MODE=auto` requests per subscription while that stays within
`GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE` of the daily cap, and Bulk beyond.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

SUBSCRIPTION_CALLS_PER_CONSENT = 3  # refresh + request + fetch
BULK_CALLS_PER_DAY = 4  # client token + Bulk request + ~2 notified Bulk fetches
POLL_CALLS_PER_DAY = 2  # client token + Authorization feed
MODES = ("subscription", "bulk", "auto")


@dataclass(frozen=True)
class DailyProjection:
    consents: int
    subscription_calls: int
    bulk_calls: int
    auto_mode: str
    per_day_cap: int
    subscription_share_cap: int


def daily_calls_projection(*, consents: int) -> DailyProjection:
    """The projected daily calls for `consents` active consents in each mode."""
    per_day = int(settings.GASCAP_PGE_BUDGET_PER_DAY)
    share = float(settings.GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE)
    subscription = SUBSCRIPTION_CALLS_PER_CONSENT * consents + POLL_CALLS_PER_DAY
    bulk = BULK_CALLS_PER_DAY + POLL_CALLS_PER_DAY
    limit = int(per_day * share) if per_day > 0 else 0
    fits = per_day <= 0 or subscription <= limit
    return DailyProjection(
        consents=consents,
        subscription_calls=subscription,
        bulk_calls=bulk,
        auto_mode="subscription" if fits else "bulk",
        per_day_cap=per_day,
        subscription_share_cap=limit,
    )


def daily_request_mode(*, consents: int) -> str:
    """ "subscription" or "bulk" for today's data request (resolving `auto`)."""
    mode = str(settings.GASCAP_INGEST_DAILY_REQUEST_MODE).strip().lower()
    if mode not in MODES:
        raise ValueError(f"GASCAP_INGEST_DAILY_REQUEST_MODE must be one of {MODES}, not {mode!r}")
    if mode == "auto":
        return daily_calls_projection(consents=consents).auto_mode
    return mode
