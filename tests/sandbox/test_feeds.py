"""The synchronous feed and single resources: PG&E's shape, realistic and deterministic data,
published-min/max honoured, DST days, gas units, quality 17 then 19."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from sandbox.readings import PACIFIC, day_bounds
from sandbox.server import SandboxServer
from sandbox.state import FakeClock

from .conftest import ATOM, ESPI, REDIRECT_URI, Pge, parse_xml, sid, upid


def day_range(first: date, last: date | None = None) -> dict[str, int]:
    start, _ = day_bounds(first)
    _, end = day_bounds(last or first)
    return {"published-min": start, "published-max": end}


def sync(pge: Pge, key: str, token: str, params: dict[str, int]):
    return pge.get(f"Batch/Subscription/{sid(key)}/UsagePoint/{upid(key)}", token, params=params)


def resources(root, name: str) -> list:
    return root.findall(f"{ATOM}entry/{ATOM}content/{ESPI}{name}")


def entries_with(root, name: str) -> list:
    """The Atom entries whose content is an ESPI `name` resource."""
    return [
        e for e in root.iter(f"{ATOM}entry") if e.find(f"{ATOM}content/{ESPI}{name}") is not None
    ]


def link(entry, rel: str) -> str:
    return next(x.get("href") for x in entry.findall(f"{ATOM}link") if x.get("rel") == rel)


def readings(root) -> list[tuple[int, int, int, int]]:
    """(start, duration, value, quality) of every IntervalReading, in document order."""
    out = []
    for reading in root.iter(f"{ESPI}IntervalReading"):
        out.append(
            (
                int(reading.findtext(f"{ESPI}timePeriod/{ESPI}start")),
                int(reading.findtext(f"{ESPI}timePeriod/{ESPI}duration")),
                int(reading.findtext(f"{ESPI}value")),
                int(reading.findtext(f"{ESPI}ReadingQuality/{ESPI}quality")),
            )
        )
    return out


@pytest.fixture
def electric(pge: Pge) -> str:
    return pge.connect("electric")["access_token"]


def test_sync_feed_is_pge_shaped_atom(pge: Pge, electric: str, sandbox: SandboxServer) -> None:
    answer = sync(pge, "electric", electric, day_range(date(2025, 11, 10), date(2025, 11, 11)))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/atom+xml")
    # PG&E's prefixes: ns1 for Atom, ns0 for ESPI.
    assert answer.content.startswith(b'<ns1:feed xmlns:ns0="http://naesb.org/espi"')
    root = parse_xml(answer.content)
    assert root.tag == f"{ATOM}feed"
    entries = root.findall(f"{ATOM}entry")
    kinds = [next(iter(e.find(f"{ATOM}content"))).tag.removeprefix(ESPI) for e in entries]
    # LocalTimeParameters and ReadingType come before the UsagePoint, as PG&E sends them.
    assert kinds.index("LocalTimeParameters") < kinds.index("UsagePoint")
    assert kinds.index("ReadingType") < kinds.index("UsagePoint")
    assert kinds.count("IntervalBlock") == 2
    assert kinds[-1] == "ProgramIdMappings"
    [usage_point] = entries_with(root, "UsagePoint")
    links = {(link.get("rel"), link.get("href")) for link in usage_point.iter(f"{ATOM}link")}
    self_href = f"{sandbox.api_base}Subscription/{sid('electric')}/UsagePoint/{upid('electric')}"
    assert ("self", self_href) in links
    assert ("up", f"{sandbox.api_base}Subscription/{sid('electric')}/UsagePoint") in links
    assert ("related", f"{self_href}/MeterReading") in links
    # Every block's up link is its MeterReading's IntervalBlock collection.
    [meter_reading] = entries_with(root, "MeterReading")
    mr_self = link(meter_reading, "self")
    for entry in entries_with(root, "IntervalBlock"):
        assert link(entry, "up") == f"{mr_self}/IntervalBlock"
    reading_type = resources(root, "ReadingType")[0]
    assert reading_type.findtext(f"{ESPI}uom") == "72"
    assert reading_type.findtext(f"{ESPI}intervalLength") == "900"
    assert reading_type.findtext(f"{ESPI}powerOfTenMultiplier") == "-3"
    tous = {r.findtext(f"{ESPI}tou") for r in root.iter(f"{ESPI}IntervalReading")}
    assert tous == {"4", "6"}  # November: winter peak and off-peak


def test_same_request_gives_the_same_bytes(pge: Pge, electric: str) -> None:
    params = day_range(date(2025, 10, 1), date(2025, 10, 7))
    first = sync(pge, "electric", electric, params)
    second = sync(pge, "electric", electric, params)
    assert first.status_code == 200
    assert first.content == second.content
    other = sync(pge, "electric", electric, day_range(date(2025, 10, 8)))
    assert other.content != first.content


def test_electric_values_follow_a_daily_shape(pge: Pge, electric: str) -> None:
    root = parse_xml(sync(pge, "electric", electric, day_range(date(2025, 11, 12))).content)
    rows = readings(root)
    assert len(rows) == 96
    assert all(duration == 900 for _, duration, _, _ in rows)
    by_hour: dict[int, int] = {}
    for start, _, value, _ in rows:
        hour = datetime.fromtimestamp(start, tz=PACIFIC).hour
        by_hour[hour] = by_hour.get(hour, 0) + value
    kwh = sum(by_hour.values()) / 1e6
    assert 5 < kwh < 60  # a household day
    assert by_hour[19] > 2 * by_hour[3]  # evening peak well above the night base
    assert all(value > 0 and value % 1000 == 0 for _, _, value, _ in rows)  # whole Wh


def test_published_min_max_select_the_days(pge: Pge, electric: str) -> None:
    first, last = date(2025, 11, 3), date(2025, 11, 5)
    root = parse_xml(sync(pge, "electric", electric, day_range(first, last)).content)
    starts = [r[0] for r in readings(root)]
    assert min(starts) == day_bounds(first)[0]
    assert max(starts) == day_bounds(last)[1] - 900
    assert len(resources(root, "IntervalBlock")) == 3


def test_a_range_with_no_data_answers_204(pge: Pge, electric: str) -> None:
    answer = sync(pge, "electric", electric, day_range(date(2025, 12, 1)))  # the future
    assert answer.status_code == 204
    assert answer.content == b""


def test_bad_published_min_is_400(pge: Pge, electric: str) -> None:
    answer = pge.get(
        f"Batch/Subscription/{sid('electric')}/UsagePoint/{upid('electric')}",
        electric,
        params={"published-min": "2025-11-01T00:00:00Z"},
    )
    assert answer.status_code == 400


def test_gas_is_daily_therms_starting_one_second_after_local_midnight(pge: Pge) -> None:
    token = pge.connect("gas")["access_token"]
    first, last = date(2025, 11, 10), date(2025, 11, 16)
    root = parse_xml(sync(pge, "gas", token, day_range(first, last)).content)
    reading_type = resources(root, "ReadingType")[0]
    assert reading_type.findtext(f"{ESPI}uom") == "169"
    assert reading_type.findtext(f"{ESPI}powerOfTenMultiplier") == "-8"
    assert reading_type.findtext(f"{ESPI}commodity") == "7"
    assert resources(root, "UsagePoint")[0].findtext(f"{ESPI}ServiceCategory/{ESPI}kind") == "1"
    rows = readings(root)
    assert len(rows) == 7
    for offset, (start, duration, value, _) in enumerate(rows):
        local = datetime.fromtimestamp(start, tz=PACIFIC)
        assert local.date() == first + timedelta(days=offset)
        assert (local.hour, local.minute, local.second) == (0, 0, 1)
        assert duration == 86400
        assert 0.2 < value * 1e-8 < 10  # therms per day


def test_fall_back_day_is_one_25_hour_block(pge: Pge, electric: str) -> None:
    root = parse_xml(sync(pge, "electric", electric, day_range(date(2025, 11, 2))).content)
    blocks = resources(root, "IntervalBlock")
    assert len(blocks) == 1
    assert blocks[0].findtext(f"{ESPI}interval/{ESPI}duration") == "90000"
    assert len(readings(root)) == 100  # 25 hours of 15 minutes


def test_spring_forward_day_is_23_hours(pge: Pge) -> None:
    token = pge.connect("gas")["access_token"]
    root = parse_xml(sync(pge, "gas", token, day_range(date(2025, 3, 9))).content)
    [(start, duration, _, _)] = readings(root)
    assert duration == 82800
    assert datetime.fromtimestamp(start, tz=PACIFIC).second == 1


def test_solar_site_has_two_series_and_splits_dst_days(pge: Pge) -> None:
    token = pge.connect("solar")["access_token"]
    root = parse_xml(sync(pge, "solar", token, day_range(date(2025, 11, 2))).content)
    directions = sorted(
        rt.findtext(f"{ESPI}flowDirection") for rt in resources(root, "ReadingType")
    )
    assert directions == ["1", "19"]
    assert len(resources(root, "MeterReading")) == 2
    blocks = resources(root, "IntervalBlock")
    # Like PG&E CMD 2016: the DST day in two blocks at the transition, 2 + 23 hours.
    durations = [int(b.findtext(f"{ESPI}interval/{ESPI}duration")) for b in blocks]
    assert durations == [7200, 90000 - 7200, 7200, 90000 - 7200]
    counts = [len(b.findall(f"{ESPI}IntervalReading")) for b in blocks]
    assert counts == [2, 23, 2, 23]


def test_solar_export_happens_in_daylight_only(pge: Pge) -> None:
    token = pge.connect("solar")["access_token"]
    root = parse_xml(sync(pge, "solar", token, day_range(date(2025, 11, 12))).content)
    received_href = None
    for entry in entries_with(root, "ReadingType"):
        if entry.findtext(f"{ATOM}content/{ESPI}ReadingType/{ESPI}flowDirection") == "19":
            received_href = link(entry, "self")
    assert received_href
    meter_readings = {link(e, "self"): e for e in entries_with(root, "MeterReading")}
    export_by_hour = {}
    for entry in entries_with(root, "IntervalBlock"):
        mr = meter_readings[link(entry, "up").removesuffix("/IntervalBlock")]
        related = [x.get("href") for x in mr.findall(f"{ATOM}link") if x.get("rel") == "related"]
        if received_href in related:
            for start, _, value, _ in readings(entry):
                export_by_hour[datetime.fromtimestamp(start, tz=PACIFIC).hour] = value
    assert export_by_hour[2] == 0
    assert export_by_hour[13] > 0


def test_quality_17_then_19_with_a_few_corrections(pge: Pge, clock: FakeClock) -> None:
    token = pge.connect("electric")["access_token"]
    params = day_range(date(2025, 11, 18))
    early = readings(parse_xml(sync(pge, "electric", token, params).content))
    assert {q for _, _, _, q in early} == {17}
    clock.advance(7 * 86400)
    token = pge.connect("electric")["access_token"]  # the first token expired meanwhile
    late = readings(parse_xml(sync(pge, "electric", token, params).content))
    assert {q for _, _, _, q in late} == {19}
    assert [(s, d) for s, d, _, _ in late] == [(s, d) for s, d, _, _ in early]
    changed = [i for i, (a, b) in enumerate(zip(early, late, strict=True)) if a[2] != b[2]]
    assert 1 <= len(changed) <= 3


def test_single_resources(pge: Pge, electric: str, sandbox: SandboxServer) -> None:
    feed = parse_xml(sync(pge, "electric", electric, day_range(date(2025, 11, 12))).content)
    rt_href = link(entries_with(feed, "ReadingType")[0], "self")
    entry = parse_xml(pge.get(rt_href, electric).content)
    assert entry.tag == f"{ATOM}entry"
    assert entry.findtext(f"{ATOM}content/{ESPI}ReadingType/{ESPI}uom") == "72"
    ltp = parse_xml(pge.get("LocalTimeParameters/1", electric).content)
    assert ltp.findtext(f"{ATOM}content/{ESPI}LocalTimeParameters/{ESPI}tzOffset") == "-28800"
    ups = parse_xml(pge.get(f"Subscription/{sid('electric')}/UsagePoint", electric).content)
    assert len(resources(ups, "UsagePoint")) == 1
    one = pge.get(f"Subscription/{sid('electric')}/UsagePoint/{upid('electric')}", electric)
    assert parse_xml(one.content).find(f"{ATOM}content/{ESPI}UsagePoint") is not None
    assert pge.get("ReadingType/bm90LWEtdHlwZQ==", electric).status_code == 404


# --- tokens per class and per subscription ---------------------------------------------------


def test_customer_token_only_reaches_its_own_subscription(pge: Pge, electric: str) -> None:
    gas = pge.connect("gas")["access_token"]
    path = f"Batch/Subscription/{sid('electric')}/UsagePoint/{upid('electric')}"
    assert pge.get(path, electric, params=day_range(date(2025, 11, 12))).status_code == 200
    assert pge.get(path, gas, params=day_range(date(2025, 11, 12))).status_code == 403
    assert pge.get(f"Batch/Subscription/{sid('electric')}", gas).status_code == 403


def test_client_token_classes(pge: Pge, electric: str) -> None:
    client = pge.client_token()
    path = f"Batch/Subscription/{sid('electric')}/UsagePoint/{upid('electric')}"
    assert pge.get(path, client).status_code == 403  # client token on customer data
    assert pge.get("Batch/Bulk/50098", electric).status_code == 403  # customer token on Bulk
    assert pge.get("Authorization", electric).status_code == 403
    assert pge.get("ReadServiceStatus", electric).status_code == 403
    assert pge.get("Batch/Bulk/50098", client).status_code == 202
    assert pge.get("Batch/Bulk/99999", client).status_code == 403  # another third party's id
    assert pge.get(path, None).status_code == 403
    assert pge.get(path, "made-up-token").status_code == 403


def test_api_refuses_requests_without_client_certificate(
    sandbox: SandboxServer,
    certs,
    electric: str,
) -> None:
    no_cert = Pge(sandbox, certs, with_cert=False)
    answer = no_cert.get(f"Subscription/{sid('electric')}/UsagePoint", electric)
    assert answer.status_code == 400
    assert answer.text == "Invalid Certificate"


# --- Authorization and ReadServiceStatus -----------------------------------------------------


def test_authorization_feed_entry_and_delete(pge: Pge, sandbox: SandboxServer) -> None:
    tokens = pge.connect("gas")
    client = pge.client_token()
    feed = parse_xml(pge.get("Authorization", client).content)
    [auth] = resources(feed, "Authorization")
    assert auth.findtext(f"{ESPI}status") == "1"
    start_ms = int(auth.findtext(f"{ESPI}authorizedPeriod/{ESPI}start"))
    assert len(str(start_ms)) == 13  # milliseconds, like PG&E
    # PG&E's sample: the Authorization names `.../resource/Subscription/{id}` (the token
    # answer names the Batch URL).
    assert auth.findtext(f"{ESPI}resourceURI") == f"{sandbox.api_base}Subscription/{sid('gas')}"
    assert tokens["resourceURI"] == f"{sandbox.api_base}Batch/Subscription/{sid('gas')}"
    entry = parse_xml(pge.get(f"Authorization/{sid('gas')}", client).content)
    assert entry.findtext(f"{ATOM}content/{ESPI}Authorization/{ESPI}status") == "1"
    assert pge.delete(f"Authorization/{sid('gas')}", client).status_code == 204
    entry = parse_xml(pge.get(f"Authorization/{sid('gas')}", client).content)
    assert entry.findtext(f"{ATOM}content/{ESPI}Authorization/{ESPI}status") == "0"
    # The consent is gone: the customer's tokens stop working, refresh is invalid_grant.
    assert (
        pge.get(f"Subscription/{sid('gas')}/UsagePoint", tokens["access_token"]).status_code == 403
    )
    refresh = pge.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.json()["error"] == "invalid_grant"
    assert pge.get("Authorization/00000000", client).status_code == 404


def _authorization(pge: Pge, client: str, key: str):
    entry = parse_xml(pge.get(f"Authorization/{sid(key)}", client).content)
    return entry.find(f"{ATOM}content/{ESPI}Authorization")


def test_authorization_expires_at_is_the_access_token_expiry(pge: Pge, clock: FakeClock) -> None:
    """Like PG&E (ESPI schema; pge_cmd_2015_authorization_entry.xml): `expires_at` follows the
    current access token, the authorizedPeriod is open-ended with PG&E's huge duration."""
    granted = int(clock())
    tokens = pge.connect("electric")
    client = pge.client_token()
    auth = _authorization(pge, client, "electric")
    assert int(auth.findtext(f"{ESPI}expires_at")) == granted + tokens["expires_in"]
    start_ms = int(auth.findtext(f"{ESPI}authorizedPeriod/{ESPI}start"))
    duration_ms = int(auth.findtext(f"{ESPI}authorizedPeriod/{ESPI}duration"))
    assert start_ms == granted * 1000
    # The sample's open-ended period ends at 253404243200000 ms (past year 9999).
    assert start_ms + duration_ms == 1440585200000 + 251963658000000
    published_ms = int(auth.findtext(f"{ESPI}publishedPeriod/{ESPI}start")) + int(
        auth.findtext(f"{ESPI}publishedPeriod/{ESPI}duration")
    )
    assert published_ms == 1395513200000 + 252026730000000

    # Two hours on, a refresh issues a new access token: `expires_at` moves with it, the
    # consent's period does not.
    clock.advance(7200)
    answer = pge.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert answer.status_code == 200, answer.text
    auth = _authorization(pge, pge.client_token(), "electric")
    assert int(auth.findtext(f"{ESPI}expires_at")) == granted + 7200 + 3600
    assert int(auth.findtext(f"{ESPI}authorizedPeriod/{ESPI}start")) == start_ms
    assert auth.findtext(f"{ESPI}status") == "1"


def test_a_consent_for_some_days_ends_with_its_period(pge: Pge, clock: FakeClock) -> None:
    granted = int(clock())
    answer = pge.approve("gas", authorized_days="2")
    code = answer.headers["Location"].split("code=")[1].split("&")[0]
    tokens = pge.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    ).json()
    auth = _authorization(pge, pge.client_token(), "gas")
    start_ms = int(auth.findtext(f"{ESPI}authorizedPeriod/{ESPI}start"))
    duration_ms = int(auth.findtext(f"{ESPI}authorizedPeriod/{ESPI}duration"))
    assert (start_ms, duration_ms) == (granted * 1000, 2 * 86400 * 1000)
    clock.advance(3 * 86400)
    refresh = pge.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.json()["error"] == "invalid_grant"
    assert pge.approve("gas", authorized_days="0").status_code == 400
    assert pge.approve("gas", authorized_days="²").status_code == 400


def test_read_service_status(pge: Pge) -> None:
    client = pge.client_token()
    status = parse_xml(pge.get("ReadServiceStatus", client).content)
    assert status.findtext(f"{ESPI}currentStatus") == "1"
    assert pge.control("POST", "service", {"up": False}).status_code == 200
    status = parse_xml(pge.get("ReadServiceStatus", client).content)
    assert status.findtext(f"{ESPI}currentStatus") == "0"
