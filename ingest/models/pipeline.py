"""The notification pipeline's records: notifications, fetches and their attempts."""

from __future__ import annotations

__all__: list[str] = []
