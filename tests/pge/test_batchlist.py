"""BatchList notification bodies: the URLs they name, and the hostile ones refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gascap.pge.batchlist import BatchListRejected, is_placeholder_correlation, parse_batchlist

BULK = "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/50098"
SAMPLE = "pge_smd_2020_notification_batchlist_malformed.xml"


def _batchlist(*urls: str, prefix: str = "ns0", element: str = "resources") -> bytes:
    items = "".join(f"<{prefix}:{element}>{u}</{prefix}:{element}>" for u in urls)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<{prefix}:BatchList xmlns:{prefix}="http://naesb.org/espi">{items}</{prefix}:BatchList>'
    ).encode()


def test_the_real_sample_as_stored_is_malformed(fixture_path) -> None:  # type: ignore[no-untyped-def]
    data = Path(fixture_path(SAMPLE)).read_bytes()
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(data)
    assert raised.value.reason == "malformed"


def test_the_real_sample_without_the_capture_artefact_names_two_urls(fixture_path) -> None:  # type: ignore[no-untyped-def]
    data = Path(fixture_path(SAMPLE)).read_bytes().replace(b"\\n", b"", 1)
    urls = parse_batchlist(data)
    assert len(urls) == 2
    assert all(
        u.startswith(
            "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/50916?correlationID="
        )
        for u in urls
    )
    assert urls[0] != urls[1]


def test_whitespace_is_stripped_duplicates_dropped_order_kept() -> None:
    data = _batchlist(
        f"\n  {BULK}?correlationID=b \n", f"{BULK}?correlationID=a", f"{BULK}?correlationID=b"
    )
    assert parse_batchlist(data) == [f"{BULK}?correlationID=b", f"{BULK}?correlationID=a"]


def test_prefixes_do_not_matter_and_the_old_singular_element_is_accepted() -> None:
    assert parse_batchlist(_batchlist(BULK, prefix="espi", element="resource")) == [BULK]
    default_ns = (
        f'<BatchList xmlns="http://naesb.org/espi"><resources>{BULK}</resources></BatchList>'
    ).encode()
    assert parse_batchlist(default_ns) == [BULK]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_batchlist(), "empty"),
        (_batchlist("  "), "empty"),
        (b"", "empty"),
        (b"<BatchList><resources>x</resources></BatchList>", "not_batchlist"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"/>', "not_batchlist"),
        (b"<ns0:BatchList xmlns:ns0='http://naesb.org/espi'><ns0:resources>", "malformed"),
        (b"not xml at all", "malformed"),
    ],
)
def test_rejections(data: bytes, reason: str) -> None:
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(data)
    assert raised.value.reason == reason


def test_the_resource_count_is_capped() -> None:
    urls = [f"{BULK}?correlationID={i}" for i in range(501)]
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(_batchlist(*urls))
    assert raised.value.reason == "too_many"
    assert len(parse_batchlist(_batchlist(*urls[:500]))) == 500
    assert len(parse_batchlist(_batchlist(*urls[:3]), max_resources=3)) == 3


def test_ten_thousand_resources_are_refused_quickly() -> None:
    data = _batchlist(*(f"{BULK}?correlationID={i}" for i in range(10_000)))
    started = time.process_time()
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(data)
    assert raised.value.reason == "too_many"
    # CPU time, not wall time: a loaded machine stretches wall time without more work.
    assert time.process_time() - started < 1.0
    assert len(parse_batchlist(data, max_resources=10_000)) == 10_000


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><ns0:resources>&lol9;</ns0:resources></ns0:BatchList>"""


def test_billion_laughs_is_refused_fast() -> None:
    started = time.process_time()
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(BILLION_LAUGHS)
    assert raised.value.reason == "dtd"
    assert time.process_time() - started < 0.1


def test_quadratic_blowup_is_refused_fast() -> None:
    entity = "A" * 50_000
    data = (
        f'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "{entity}">]>'
        f'<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><ns0:resources>{"&a;" * 20_000}'
        "</ns0:resources></ns0:BatchList>"
    ).encode()
    started = time.process_time()
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(data)
    assert raised.value.reason == "dtd"
    assert time.process_time() - started < 0.1


def test_an_external_entity_never_reads_the_file(tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("CANARY-3f9a-do-not-leak")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE b [<!ENTITY xxe SYSTEM "file://{canary}">]>'
        '<ns0:BatchList xmlns:ns0="http://naesb.org/espi"><ns0:resources>&xxe;</ns0:resources>'
        "</ns0:BatchList>"
    ).encode()
    with pytest.raises(BatchListRejected) as raised:
        parse_batchlist(data)
    assert raised.value.reason == "dtd"
    assert "CANARY" not in str(raised.value) and "CANARY" not in repr(raised.value)


@pytest.mark.parametrize(
    ("url", "placeholder"),
    [
        (f"{BULK}?correlationID=00000000-0000-0000-0000-000000000000", True),
        (f"{BULK}?correlationID=0", True),
        (f"{BULK}?correlationid=0000", True),
        (f"{BULK}?correlationID=00000000-0000-0000-0000-000000000001", False),
        (f"{BULK}?correlationID=", False),
        (BULK, False),
    ],
)
def test_placeholder_correlation_ids(url: str, placeholder: bool) -> None:
    assert is_placeholder_correlation(url) is placeholder
