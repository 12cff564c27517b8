"""The element names the parser matches: `{namespace}localname`, never a prefix (PG&E has
changed its prefixes, docs/espi-model.md §1.2)."""

from __future__ import annotations

ATOM_NS = "http://www.w3.org/2005/Atom"
ESPI_NS = "http://naesb.org/espi"

ATOM = "{" + ATOM_NS + "}"
ESPI = "{" + ESPI_NS + "}"
T_ENTRY = ATOM + "entry"
T_LINK = ATOM + "link"
T_CONTENT = ATOM + "content"
T_TITLE = ATOM + "title"
T_UPDATED = ATOM + "updated"
T_FEED = ATOM + "feed"
T_READING = ESPI + "IntervalReading"
T_BLOCK = ESPI + "IntervalBlock"
T_TIME_PERIOD = ESPI + "timePeriod"
T_START = ESPI + "start"
T_DURATION = ESPI + "duration"
T_VALUE = ESPI + "value"
T_COST = ESPI + "cost"
T_QUALITY_BOX = ESPI + "ReadingQuality"
T_QUALITY = ESPI + "quality"
T_TOU = ESPI + "tou"
T_CPP = ESPI + "cpp"
T_TIER = ESPI + "consumptionTier"
