"""ingest's admin, one module per concern, each registering its models on import:
`pipeline` (notifications and fetches, with replay), `data_requests` (the data requests we
make of PG&E, with replay), `readings` (usage points, series, reading types, revisions).
`base` holds the read-only bases and the confirmed replay action they share; `display` how
codes, units and local times read. Django's autodiscovery imports this package; a new
record's admin is a module here, added to the import below."""

from __future__ import annotations

from ingest.admin import data_requests, pipeline, readings  # noqa: F401  (registers the ModelAdmins)
