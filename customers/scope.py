"""PG&E's scope string in words for operators (docs/pge-protocol.md: FB numbers are ESPI function
blocks; `IntervalDuration` seconds; `HistoryLength` seconds)."""

from __future__ import annotations

FUNCTION_BLOCKS = {
    "1": "common",
    "3": "interval metering",
    "4": "interval electricity",
    "5": "interval electricity (metering)",
    "8": "delivered/received metering",
    "10": "gas",
    "13": "demand",
    "14": "forward and reverse metering",
    "15": "usage summary",
    "16": "usage summary with cost",
    "18": "security",
    "19": "authorization and authentication",
    "31": "third-party management",
    "32": "retail customer",
    "35": "bulk data",
    "37": "retail customer (authorization)",
    "38": "retail customer (data)",
    "39": "push notifications",
    "40": "offline authorization",
}


def scope_describe(scope_params: dict[str, list[str]] | None) -> str:
    """e.g. "interval electricity (FB 4), gas (FB 10); intervals 900 s, 3600 s; 730 days"."""
    if not scope_params:
        return ""
    parts: list[str] = []
    blocks = scope_params.get("FB") or []
    if blocks:
        parts.append(
            ", ".join(
                f"{FUNCTION_BLOCKS[fb]} (FB {fb})" if fb in FUNCTION_BLOCKS else f"FB {fb}"
                for fb in blocks
            )
        )
    intervals = scope_params.get("IntervalDuration") or []
    if intervals:
        parts.append("intervals " + ", ".join(f"{value} s" for value in intervals))
    history = scope_params.get("HistoryLength") or []
    if history and history[0].isdigit():
        parts.append(f"history {int(history[0]) // 86400} days")
    for key in ("BlockDuration", "SubscriptionFrequency"):
        if scope_params.get(key):
            parts.append(f"{key} {'/'.join(scope_params[key])}")
    return "; ".join(parts)
