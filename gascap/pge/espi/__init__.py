"""The streaming ESPI (Green Button) parser, one module per concern:

- `stream`: `EspiStream`, one pass over a document (readings out in batches, entries read as
  they end, flat memory whatever the size) and `espi_read` for a small whole document;
- `readings`: IntervalReading elements to `ReadingRow` tuples, ranges checked per batch;
- `entries`: an entry's links, `updated` and small resources;
- `links`: after the end, which usage point, meter reading and reading type each block's
  readings belong to (docs/espi-model.md §3);
- `records`: the records handed out; `codes`: the ESPI code tables and labels;
- `tags`: the element names (by namespace URI, never by prefix); `bounds`: the ranges a value
  must keep and `EspiRejected`, the one error for malformed or hostile input.

Usage::

    stream = EspiStream(source)
    for block, rows in stream.batches():
        ...                         # block: BlockRef (links filled once its entry ended)
    series = stream.document_series()   # {block number: Series}, resolved after the end
"""

from __future__ import annotations

from gascap.pge.espi.bounds import (
    DURATION_MAX,
    INT64_MAX,
    INT64_MIN,
    START_MAX,
    START_MIN,
    EspiRejected,
)
from gascap.pge.espi.links import resolve_series
from gascap.pge.espi.records import EspiDocument, ReadingRow, ReadingTypeInfo, Series
from gascap.pge.espi.stream import EspiStream, espi_read

__all__ = [
    "DURATION_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "START_MAX",
    "START_MIN",
    "EspiDocument",
    "EspiRejected",
    "EspiStream",
    "ReadingRow",
    "ReadingTypeInfo",
    "Series",
    "espi_read",
    "resolve_series",
]
