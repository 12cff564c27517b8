"""One pass over one ESPI document: interval readings out in batches as they are read, the
small resources collected as each entry ends and linked after the document ends.

Memory stays flat whatever the document size: readings are cleared as soon as they are read
and consumed siblings are deleted, so a 800 MB feed never becomes a tree. A `feed` or a single
`entry` root, a UTF-8 BOM, stray text, unknown elements and codes are accepted. The XML parser
itself comes from `gascap.pge.safexml`; every malformed or hostile input raises `EspiRejected`
with the line and column where the parser knows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from gascap.pge.espi.entries import atom_datetime, entry_read
from gascap.pge.espi.links import resolve_series
from gascap.pge.espi.readings import batch_checked, reading_row
from gascap.pge.espi.records import BlockRef, EspiDocument, ReadingRow, Series
from gascap.pge.espi.tags import T_BLOCK, T_ENTRY, T_FEED, T_READING, T_UPDATED
from gascap.pge.safexml import espi_events, refuse_attribute_flood


class EspiStream:
    """One pass over one ESPI document. Iterate `batches()` once, then read `document`."""

    def __init__(self, source: IO[bytes] | str, *, batch_size: int = 4096) -> None:
        self._source = source
        self._batch_size = batch_size
        self.document = EspiDocument()
        self._finished = False

    def batches(self) -> Iterator[tuple[BlockRef, list[ReadingRow]]]:
        """Yield (block, readings) batches in document order; at most `batch_size` each."""
        doc = self.document
        batch: list[ReadingRow] = []
        block: BlockRef | None = None
        entry_blocks: list[BlockRef] = []
        first_entry = True
        size = self._batch_size
        skipped = 0
        since_trim = 0
        with espi_events(self._source, tag=(T_READING, T_BLOCK, T_ENTRY)) as events:
            for _event, element in events:
                tag = element.tag
                if tag == T_READING:
                    if block is None:
                        block = BlockRef(number=len(doc.blocks))
                        doc.blocks.append(block)
                        entry_blocks.append(block)
                    row = reading_row(element)
                    if row is None:
                        skipped += 1
                    else:
                        batch.append(row)
                    since_trim += 1
                    if since_trim >= 256:
                        # Drop the readings already read (cleared, but still nodes in the tree).
                        parent = element.getparent()
                        if parent is not None:
                            del parent[:-1]
                        since_trim = 0
                    if len(batch) >= size:
                        block.readings += len(batch)
                        yield block, batch_checked(batch, element, block)
                        batch = []
                elif tag == T_BLOCK:
                    refuse_attribute_flood(element)
                    # The readings that follow belong to another block (Eversource sends 36
                    # blocks in one entry).
                    if batch and block is not None:
                        block.readings += len(batch)
                        yield block, batch_checked(batch, element, block)
                        batch = []
                    block = None
                    since_trim = 0
                    element.clear()
                else:  # an entry ended: its links are known, small resources are read whole
                    refuse_attribute_flood(element)
                    parent = element.getparent()
                    if first_entry:
                        # The feed's own children (id, title, updated) come before its first
                        # entry and are trimmed after it: read the feed's `updated` now.
                        first_entry = False
                        if parent is not None and parent.tag == T_FEED:
                            doc.updated = atom_datetime(parent.findtext(T_UPDATED))
                    links, updated = entry_read(element, doc)
                    for ref in entry_blocks:
                        ref.links = links
                        ref.updated = updated or doc.updated
                    entry_blocks = []
                    if batch and block is not None:
                        block.readings += len(batch)
                        yield block, batch_checked(batch, element, block)
                        batch = []
                    block = None
                    element.clear()
                    if parent is not None:
                        del parent[:-1]
            if batch and block is not None:
                block.readings += len(batch)
                yield block, batch_checked(batch, element, block)
        doc.readings_skipped = skipped
        self._finished = True

    # --- resolution, after the document ended ----------------------------------------------

    def document_series(self) -> dict[int, Series]:
        """Link every block to its usage point, meter reading and reading type."""
        if not self._finished:
            raise RuntimeError("document_series() needs batches() to have run to the end")
        return resolve_series(self.document)


def espi_read(
    source: IO[bytes] | str,
) -> tuple[EspiDocument, dict[int, Series], list[tuple[int, ReadingRow]]]:
    """Read a whole (small) document: (document, series by block, [(block no, row), …])."""
    stream = EspiStream(source)
    rows = [(block.number, row) for block, batch in stream.batches() for row in batch]
    return stream.document, stream.document_series(), rows
