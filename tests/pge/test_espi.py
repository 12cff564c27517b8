"""The streaming ESPI parser: namespaces by URI, document shapes, link resolution whatever the
entry order, safety (DTD/entities refused) and clear errors for malformed input."""

from __future__ import annotations

import io
import subprocess
import sys
from decimal import Decimal

import pytest

from gascap.pge.espi import EspiRejected, EspiStream, espi_read

BASE = "https://api.example.test/espi/1_1/resource/"
UP = f"{BASE}Subscription/S1/UsagePoint/UP1"
MR_D = f"{UP}/MeterReading/MRD"
MR_R = f"{UP}/MeterReading/MRR"
RT_D = f"{BASE}ReadingType/RTD"
RT_R = f"{BASE}ReadingType/RTR"


def _entry(
    atom: str, espi: str, self_href: str, up: str | None, related: list[str], body: str
) -> str:
    a = f"{atom}:" if atom else ""
    links = f'<{a}link rel="self" href="{self_href}"/>'
    if up:
        links += f'<{a}link rel="up" href="{up}"/>'
    links += "".join(f'<{a}link rel="related" href="{h}"/>' for h in related)
    return f"<{a}entry>{links}<{a}content>{body}</{a}content></{a}entry>"


def _res(espi: str, name: str, inner: str) -> str:
    if espi:
        prefixed = inner.replace("<", f"<{espi}:").replace(f"<{espi}:/", f"</{espi}:")
        return f'<{espi}:{name} xmlns:{espi}="http://naesb.org/espi">{prefixed}</{espi}:{name}>'
    return f'<{name} xmlns="http://naesb.org/espi">{inner}</{name}>'


def _reading(start: int, value: int, quality: int | None = None, cost: int | None = None) -> str:
    rq = (
        f"<ReadingQuality><quality>{quality}</quality></ReadingQuality>"
        if quality is not None
        else ""
    )
    c = f"<cost>{cost}</cost>" if cost is not None else ""
    period = f"<timePeriod><duration>3600</duration><start>{start}</start></timePeriod>"
    return f"<IntervalReading>{c}{rq}{period}<value>{value}</value></IntervalReading>"


def net_metering_feed(*, atom: str = "ns1", espi: str = "ns0", reverse: bool = False) -> bytes:
    """A net-metered usage point: delivered (fd 1) and received (fd 19) series."""
    rt = (
        "<flowDirection>{fd}</flowDirection><intervalLength>3600</intervalLength>"
        "<powerOfTenMultiplier>-3</powerOfTenMultiplier><uom>72</uom>"
    )
    entries = [
        _entry(
            atom,
            espi,
            UP,
            f"{BASE}Subscription/S1/UsagePoint",
            [f"{UP}/MeterReading"],
            _res(espi, "UsagePoint", "<ServiceCategory><kind>0</kind></ServiceCategory>"),
        ),
        _entry(
            atom,
            espi,
            MR_D,
            f"{UP}/MeterReading",
            [f"{MR_D}/IntervalBlock", RT_D],
            _res(espi, "MeterReading", ""),
        ),
        _entry(
            atom,
            espi,
            MR_R,
            f"{UP}/MeterReading",
            [f"{MR_R}/IntervalBlock", RT_R],
            _res(espi, "MeterReading", ""),
        ),
        _entry(
            atom, espi, RT_D, f"{BASE}ReadingType", [], _res(espi, "ReadingType", rt.format(fd=1))
        ),
        _entry(
            atom, espi, RT_R, f"{BASE}ReadingType", [], _res(espi, "ReadingType", rt.format(fd=19))
        ),
        _entry(
            atom,
            espi,
            f"{MR_D}/IntervalBlock/1",
            f"{MR_D}/IntervalBlock",
            [],
            _res(espi, "IntervalBlock", _reading(1000, 1500, 17) + _reading(4600, 2500, 19, 12345)),
        ),
        _entry(
            atom,
            espi,
            f"{MR_R}/IntervalBlock/1",
            f"{MR_R}/IntervalBlock",
            [],
            _res(espi, "IntervalBlock", _reading(1000, 700)),
        ),
    ]
    if reverse:
        entries.reverse()
    a = f"{atom}:" if atom else ""
    decl = (
        f'xmlns:{atom}="http://www.w3.org/2005/Atom"'
        if atom
        else 'xmlns="http://www.w3.org/2005/Atom"'
    )
    return f"<{a}feed {decl}>{''.join(entries)}</{a}feed>".encode()


def _by_series(data: bytes) -> dict[tuple[str, int | None], list[tuple]]:
    _doc, series, rows = espi_read(io.BytesIO(data))
    out: dict[tuple[str, int | None], list[tuple]] = {}
    for block, row in rows:
        s = series[block]
        key = (s.meter_reading_href, s.reading_type.flow_direction if s.reading_type else None)
        out.setdefault(key, []).append(row)
    return out


def test_delivered_and_received_are_separate_series_with_their_reading_types():
    got = _by_series(net_metering_feed())
    assert got == {
        (MR_D, 1): [
            (1000, 3600, 1500, None, 17, None, None, None),
            (4600, 3600, 2500, 12345, 19, None, None, None),
        ],
        (MR_R, 19): [(1000, 3600, 700, None, None, None, None, None)],
    }


def test_entry_order_does_not_matter():
    assert _by_series(net_metering_feed(reverse=True)) == _by_series(net_metering_feed())


@pytest.mark.parametrize(("atom", "espi"), [("", ""), ("a", "e"), ("ns2", "espi")])
def test_prefixes_do_not_matter_only_namespace_uris(atom, espi):
    assert _by_series(net_metering_feed(atom=atom, espi=espi)) == _by_series(net_metering_feed())


def test_elements_in_a_foreign_namespace_are_not_readings():
    data = net_metering_feed().replace(b"http://naesb.org/espi", b"http://example.test/not-espi")
    doc, _series, rows = espi_read(io.BytesIO(data))
    assert rows == []
    assert doc.usage_points == {}


def test_bom_stray_text_unknown_elements_and_codes_are_accepted():
    data = net_metering_feed(atom="", espi="")
    data = data.replace(b"<entry>", b"\\n<entry><futureElement>x</futureElement>", 1)
    data = data.replace(b"<uom>72</uom>", b"<uom>9999</uom><newCode>5</newCode>")
    got = _by_series(b"\xef\xbb\xbf" + data)
    assert sum(len(v) for v in got.values()) == 3
    doc, _, _ = espi_read(io.BytesIO(b"\xef\xbb\xbf" + data))
    assert {rt.uom for rt in doc.reading_types.values()} == {9999}


def _single_entry(self_href: str, body: str) -> str:
    return (
        f'<entry xmlns="http://www.w3.org/2005/Atom"><link rel="self" href="{self_href}"/>'
        f"<content>{body}</content></entry>"
    )


def test_single_entry_root():
    body = _res("", "ReadingType", "<uom>169</uom><powerOfTenMultiplier>-8</powerOfTenMultiplier>")
    data = _single_entry(RT_D, body)
    doc, _, rows = espi_read(io.BytesIO(data.encode()))
    assert rows == []
    assert doc.reading_types[RT_D].uom == 169
    assert doc.reading_types[RT_D].multiplier == -8


def test_block_without_up_link_resolves_by_its_self_href():
    data = net_metering_feed(atom="", espi="").replace(
        f'<link rel="up" href="{MR_D}/IntervalBlock"/>'.encode(), b""
    )
    assert (MR_D, 1) in _by_series(data)


def test_fractional_start_is_kept_exactly():
    data = net_metering_feed(atom="", espi="").replace(
        b"<start>1000</start>", b"<start>1721154384.66136</start>", 1
    )
    rows = _by_series(data)[(MR_D, 1)]
    assert rows[0][0] == Decimal("1721154384.66136")


def test_summary_fields_are_read():
    summary = _res(
        "",
        "UsageSummary",
        "<billingPeriod><duration>2592000</duration><start>1330000000</start></billingPeriod>"
        "<billLastPeriod>4512345</billLastPeriod><currency>840</currency>"
        "<overallConsumptionLastPeriod><powerOfTenMultiplier>-3</powerOfTenMultiplier>"
        "<uom>72</uom><value>512000000</value></overallConsumptionLastPeriod>"
        "<costAdditionalDetailLastPeriod><amount>1200000</amount><itemKind>3</itemKind></costAdditionalDetailLastPeriod>"
        "<costAdditionalDetailLastPeriod><amount>300000</amount><itemKind>5</itemKind></costAdditionalDetailLastPeriod>",
    )
    data = _single_entry(f"{UP}/UsageSummary/1", summary)
    doc, _, _ = espi_read(io.BytesIO(data.encode()))
    (s,) = doc.usage_summaries
    assert (s.billing_start, s.billing_duration, s.bill_last_period, s.currency) == (
        1330000000,
        2592000,
        4512345,
        840,
    )
    assert s.overall_consumption.scaled == Decimal("512000")
    assert [item["amount"] for item in s.line_items] == ["1200000", "300000"]


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaa">]><feed xmlns="http://www.w3.org/2005/Atom">&a;</feed>',
        b'<?xml version="1.0"?><!DOCTYPE feed SYSTEM "http://example.test/x.dtd"><feed xmlns="http://www.w3.org/2005/Atom"/>',
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]><feed>&x;</feed>',
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><feed>&lol2;</feed>',
    ],
)
def test_dtds_and_entities_are_refused(data):
    with pytest.raises(EspiRejected) as caught:
        espi_read(io.BytesIO(data))
    assert caught.value.reason in {"dtd", "malformed"}
    assert "passwd" not in str(caught.value) or caught.value.reason == "dtd"


def test_malformed_xml_says_where_and_why():
    data = net_metering_feed(atom="", espi="")
    broken = data[: len(data) // 2] + b"</oops>" + data[len(data) // 2 :]
    with pytest.raises(EspiRejected) as caught:
        espi_read(io.BytesIO(broken))
    assert caught.value.reason == "malformed"
    assert caught.value.line == 1 and caught.value.column
    assert "line 1" in str(caught.value)


def test_a_non_integer_value_is_rejected_with_its_line():
    data = net_metering_feed(atom="", espi="").replace(b"<value>700</value>", b"<value>7.5</value>")
    with pytest.raises(EspiRejected, match="not an integer") as caught:
        espi_read(io.BytesIO(data))
    assert caught.value.line == 1


def test_readings_stream_before_the_document_ends():
    """The first batch is out while the rest of the document has not been read yet."""

    class Tail(io.RawIOBase):
        def __init__(self, head: bytes):
            self.parts = [head]
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            if not self.parts:
                raise AssertionError("the parser read past the first block before yielding")
            chunk = self.parts.pop(0)
            buffer[: len(chunk)] = chunk
            self.served += len(chunk)
            return len(chunk)

    readings = "".join(_reading(3600 * i, i) for i in range(5000))
    head = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
        f'<link rel="self" href="{MR_D}/IntervalBlock/1"/><content>'
        f'<IntervalBlock xmlns="http://naesb.org/espi">{readings}'
    ).encode()
    stream = EspiStream(io.BufferedReader(Tail(head), buffer_size=len(head) + 1), batch_size=1000)
    _block, rows = next(iter(stream.batches()))
    assert len(rows) == 1000 and rows[0][2] == 0


def _write_feed(path, days: int) -> None:
    with open(path, "wb") as out:
        out.write(b'<feed xmlns="http://www.w3.org/2005/Atom">')
        for day in range(days):
            start = 1_600_000_000 + day * 86400
            out.write(
                f'<entry><link rel="self" href="{MR_D}/IntervalBlock/{start}"/><content>'
                f'<IntervalBlock xmlns="http://naesb.org/espi">'.encode()
            )
            out.write("".join(_reading(start + 900 * i, i, 17) for i in range(96)).encode())
            out.write(b"</IntervalBlock></content></entry>")
        out.write(b"</feed>")


def _peak_rss_mb(path) -> tuple[int, int]:
    script = (
        "from gascap.pge.espi import EspiStream\n"
        f"stream = EspiStream({str(path)!r})\n"
        "n = sum(len(rows) for _, rows in stream.batches())\n"
        # VmHWM (this process's peak since exec), not ru_maxrss, which survives exec: a child
        # of a large pytest process would report the parent's size and hide any growth.
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "print(n, int(hwm.split()[1]) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    count, peak = map(int, out.stdout.split())
    return count, peak


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_memory_stays_flat_whatever_the_document_size(tmp_path):
    """300,000 readings (≈ 50 MB) peak within a few MB of 960 readings: no tree is built."""
    small, big = tmp_path / "small.xml", tmp_path / "big.xml"
    _write_feed(small, 10)
    _write_feed(big, 3125)
    assert big.stat().st_size > 45_000_000
    small_count, small_peak = _peak_rss_mb(small)
    big_count, big_peak = _peak_rss_mb(big)
    assert (small_count, big_count) == (960, 300_000)
    assert big_peak - small_peak < 15, f"{small_peak} MB → {big_peak} MB: memory grows with size"
