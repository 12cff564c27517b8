"""ingest's models, one module per concern: reading storage, the notification pipeline and
the data requests we make of PG&E."""

from __future__ import annotations

from ingest.models.data_requests import *  # noqa: F403
from ingest.models.pipeline import *  # noqa: F403
from ingest.models.readings import *  # noqa: F403
from ingest.models.rollups import *  # noqa: F403
