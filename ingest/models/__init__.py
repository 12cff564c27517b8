"""ingest's models, one module per concern: reading storage and the notification pipeline."""

from __future__ import annotations

from ingest.models.pipeline import *  # noqa: F403
from ingest.models.readings import *  # noqa: F403
from ingest.models.rollups import *  # noqa: F403
