"""Reading storage: usage points, meter readings (series), reading types, interval readings,
revisions and usage summaries."""

from __future__ import annotations

__all__: list[str] = []
