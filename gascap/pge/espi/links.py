"""Linking an ESPI document's resources once it has ended: which usage point, meter reading
and reading type each IntervalBlock's readings belong to.

ESPI has no foreign keys, only Atom `self` / `up` / `related` hrefs, in any entry order, and
real producers bend them (docs/espi-model.md §3): relative hrefs, no `up` link (Opower), a
MeterReading whose `related` names one block, a UsagePoint under `BillingAccount/…` whose
MeterReadings are under `User/…`. Exact href matches come first, then those fallbacks.
"""

from __future__ import annotations

from gascap.pge.espi.records import EspiDocument, MeterReadingInfo, Series


def _parent_collection(href: str, collection: str) -> str | None:
    """`…/UsagePoint/U/MeterReading/M` → `…/UsagePoint/U` (when `collection` is MeterReading)."""
    head, _, _last = href.rstrip("/").rpartition("/")
    if head.endswith("/" + collection) or head == collection:
        return head[: -len(collection)].rstrip("/") or None
    return None


def _usage_point_for(doc: EspiDocument, mr_href: str, mr: MeterReadingInfo | None) -> str:
    derived = None
    if mr is not None and mr.links.up_href:
        up_href = mr.links.up_href.rstrip("/")
        if up_href.endswith("/MeterReading"):
            derived = up_href[: -len("/MeterReading")]
    derived = derived or _parent_collection(mr_href, "MeterReading") or mr_href
    if derived in doc.usage_points:
        return derived
    # Opower: the UsagePoint's related link names the MeterReading itself, and one file puts
    # the UsagePoint under BillingAccount/… while its MeterReadings are under User/….
    for up in doc.usage_points.values():
        if mr_href in up.links.related or f"{up.href}/MeterReading" == derived:
            return up.href
    tail = derived.rsplit("/UsagePoint/", 1)[-1] if "/UsagePoint/" in derived else None
    if tail:
        for up in doc.usage_points.values():
            if up.href.endswith("/UsagePoint/" + tail):
                return up.href
    if len(doc.usage_points) == 1:
        return next(iter(doc.usage_points))
    return derived


def _reading_type_for(doc: EspiDocument, mr_href: str, mr: MeterReadingInfo | None) -> str | None:
    if mr is None:
        return None
    candidates = []
    for href in mr.links.related:
        if href in doc.reading_types:
            return href
        if "/IntervalBlock" in href or "/LocalTimeParameters" in href:
            continue
        candidates.append(href)
    for href in candidates:
        if "ReadingType" in href:
            return href
    return candidates[0] if candidates else None


def resolve_series(doc: EspiDocument) -> dict[int, Series]:
    """Each block's series: exact href matches first, then the real-world fallbacks of §3."""
    out: dict[int, Series] = {}
    cache: dict[str, Series] = {}
    for block in doc.blocks:
        mr_href = block.meter_reading_href
        if mr_href is None:
            continue
        series = cache.get(mr_href)
        if series is None:
            mr = doc.meter_readings.get(mr_href)
            if mr is None:
                # Opower MeterReadings relate to one block; match any MR whose related
                # links start with the block's collection.
                for candidate in doc.meter_readings.values():
                    if any(
                        h.startswith(mr_href + "/IntervalBlock") for h in candidate.links.related
                    ):
                        mr = candidate
                        break
            rt_href = _reading_type_for(doc, mr_href, mr)
            series = Series(
                usage_point_href=_usage_point_for(doc, mr_href, mr),
                meter_reading_href=mr_href,
                reading_type_href=rt_href,
                reading_type=doc.reading_types.get(rt_href) if rt_href else None,
            )
            cache[mr_href] = series
        out[block.number] = series
    return out
