"""The small resources of one document as its import stores them: which usage points the
binding lets it write (and to which authorization), their rows, its reading types and its
series, each stored once however many times the import asks.

`ingest.readings.document_import` stores everything once the document has ended; the
overlapped merge (`ingest.readings_overlap`) stores a chunk's series in the middle of the
document, and the end of the document stores the rest, and every usage point once more with
what the whole document says about it (a LocalTimeParameters entry may come late).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from gascap.pge.espi.records import EspiDocument, Series
from ingest.models import MeterReading, ReadingType, UsagePoint
from ingest.readings_resources import reading_type_store, series_store, usage_points_store
from ingest.usage_point_binding import UsagePointBinding


class DocumentStore:
    def __init__(
        self, doc: EspiDocument, *, binding: UsagePointBinding | None, now: datetime
    ) -> None:
        self.doc = doc
        self.binding = binding
        self.now = now
        # Usage point href -> authorization id (None: unbound), in the order first met.
        self.bound: dict[str, int | None] = {}
        self.skipped: set[str] = set()
        self.usage_points: dict[str, UsagePoint] = {}
        self.reading_types: dict[str, ReadingType] = {}
        # MeterReading href -> its series row.
        self.series: dict[str, MeterReading] = {}
        # Series this import created (they held no reading before it).
        self.fresh: set[int] = set()
        # ReadingType hrefs the document lacked (units unknown until fetched).
        self.missing_reading_types: dict[str, None] = {}

    def bind_all(self, hrefs: Iterable[str]) -> None:
        """`bind` each of these usage point hrefs, the binding's lookups done at once."""
        hrefs = [href for href in hrefs if href]
        if self.binding is not None:
            self.binding.prefetch(h for h in hrefs if h not in self.bound and h not in self.skipped)
        for href in hrefs:
            self.bind(href)

    def bind(self, href: str) -> None:
        """Decide once whether the document may write this usage point (raises
        `DocumentRefused` for one outside the fetching subscription)."""
        if href in self.bound or href in self.skipped:
            return
        authorization_id = None
        if self.binding is not None:
            authorization_id = self.binding.authorization_for(href)
            if authorization_id is None:
                self.skipped.add(href)
                return
        self.bound[href] = authorization_id

    def _reading_type(self, href: str) -> ReadingType | None:
        if href not in self.reading_types:
            info = self.doc.reading_types.get(href)
            if info is None:
                return None
            self.reading_types[href] = reading_type_store(info, now=self.now)
        return self.reading_types[href]

    def series_for(self, series_by_block: dict[int, Series], *, final: bool) -> dict[int, int]:
        """Store the series of these blocks (and their usage points) that are not stored yet;
        each block's series id (blocks of usage points the binding skips have none).

        `final`: the document has ended; every bound usage point is stored again with what
        the whole document says, and every ReadingType it carries is stored.
        """
        # The first block's series of each MeterReading names its usage point.
        firsts: dict[str, Series] = {}
        for series in series_by_block.values():
            href = series.meter_reading_href
            if href not in self.series and href not in firsts:
                firsts[href] = series
        self.bind_all(series.usage_point_href for series in firsts.values())
        if final:
            self.usage_points = usage_points_store(self.bound, self.doc, now=self.now)
            for href in self.doc.reading_types:
                if href:
                    self._reading_type(href)
        else:
            new = {h: a for h, a in self.bound.items() if h not in self.usage_points}
            if new:
                self.usage_points.update(usage_points_store(new, self.doc, now=self.now))
        wanted = [
            (
                series,
                self.usage_points[series.usage_point_href],
                self._reading_type(series.reading_type_href or ""),
            )
            for series in firsts.values()
            if series.usage_point_href in self.usage_points  # else skipped by the binding
        ]
        if wanted:
            for href, (row, created) in series_store(wanted, now=self.now).items():
                self.series[href] = row
                if created:
                    self.fresh.add(row.pk)
                if row.reading_type_id is None and row.reading_type_href:
                    self.missing_reading_types[row.reading_type_href] = None
        return {
            block: self.series[series.meter_reading_href].pk
            for block, series in series_by_block.items()
            if series.meter_reading_href in self.series
        }
