"""Asynchronous requests: 202 now, a BatchList POSTed to the notification URL later, and the
resource URLs it names serving the data."""

from __future__ import annotations

import time
from datetime import date

from sandbox.readings import day_bounds
from sandbox.server import SandboxServer

from .conftest import ATOM, ESPI, Listener, Pge, parse_xml, sid


def batchlist_urls(body: bytes) -> list[str]:
    root = parse_xml(body)
    assert root.tag == f"{ESPI}BatchList"
    return [element.text or "" for element in root.findall(f"{ESPI}resources")]


def test_subscription_request_is_202_then_a_batchlist_names_the_data(
    pge: Pge, listener: Listener, sandbox: SandboxServer
) -> None:
    token = pge.connect("solar")["access_token"]
    start, _ = day_bounds(date(2025, 11, 10))
    _, end = day_bounds(date(2025, 11, 12))
    answer = pge.get(
        f"Batch/Subscription/{sid('solar')}",
        token,
        params={"published-min": start, "published-max": end},
    )
    assert answer.status_code == 202
    assert answer.content == b""
    [body] = listener.wait_for(1)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ns0:BatchList')
    [url] = batchlist_urls(body)
    # The URL starts with the sandbox's own API base, so gascap's allow-list accepts it.
    assert url.startswith(f"{sandbox.api_base}Batch/Subscription/{sid('solar')}?correlationID=")
    data = pge.get(url, token)
    assert data.status_code == 200
    root = parse_xml(data.content)
    blocks = root.findall(f"{ATOM}entry/{ATOM}content/{ESPI}IntervalBlock")
    assert len(blocks) == 3 * 2  # three days, delivered and received
    starts = [int(b.findtext(f"{ESPI}interval/{ESPI}start")) for b in blocks]
    assert min(starts) == start
    # The resource needs that subscription's customer token.
    other = pge.connect("gas")["access_token"]
    assert pge.get(url, other).status_code == 403
    assert pge.get(url, pge.client_token()).status_code == 403


def test_the_notification_comes_after_the_delay(pge: Pge, listener: Listener) -> None:
    token = pge.connect("gas")["access_token"]
    began = time.monotonic()
    assert pge.get(f"Batch/Subscription/{sid('gas')}", token).status_code == 202
    assert listener.bodies == []  # not before the 202 (0.1 s delay in tests)
    listener.wait_for(1)
    assert time.monotonic() - began >= 0.1
    assert len(listener.bodies) == 1


def test_bulk_covers_every_active_subscription(pge: Pge, listener: Listener) -> None:
    for key in ("electric", "gas"):
        pge.connect(key)
    client = pge.client_token()
    assert pge.get("Batch/Bulk/50098", client).status_code == 202
    [url] = batchlist_urls(listener.wait_for(1)[0])
    assert "/Batch/Bulk/50098?correlationID=" in url
    root = parse_xml(pge.get(url, client).content)
    kinds = sorted(
        up.findtext(f"{ESPI}ServiceCategory/{ESPI}kind")
        for up in root.findall(f"{ATOM}entry/{ATOM}content/{ESPI}UsagePoint")
    )
    assert kinds == ["0", "1"]  # electric and gas, not the solar home (no consent)
    hrefs = {
        link.get("href")
        for link in root.iter(f"{ATOM}link")
        if link.get("rel") == "self" and "/UsagePoint/" in (link.get("href") or "")
    }
    assert any(f"/Subscription/{sid('electric')}/" in h for h in hrefs)
    assert not any(f"/Subscription/{sid('solar')}/" in h for h in hrefs)


def test_unknown_correlation_id_is_404(pge: Pge) -> None:
    client = pge.client_token()
    assert pge.get("Batch/Bulk/50098?correlationID=not-issued", client).status_code == 404


def test_control_endpoint_pushes_a_daily_notification(pge: Pge, listener: Listener) -> None:
    token = pge.connect("electric")["access_token"]
    answer = pge.control("POST", "notify", {"subscription_id": sid("electric")})
    assert answer.status_code == 200
    [url] = batchlist_urls(listener.wait_for(1)[0])
    assert url == answer.json()["resources"][0]
    assert pge.get(url, token).status_code == 200


def test_requests_and_notifications_are_recorded_without_tokens(
    pge: Pge, listener: Listener
) -> None:
    tokens = pge.connect("gas")
    pge.get(f"Batch/Subscription/{sid('gas')}", tokens["access_token"])
    listener.wait_for(1)
    records = pge.control("GET", "requests?path=Batch").json()
    assert records[-1]["token_class"] == "customer"
    assert records[-1]["subscription_id"] == sid("gas")
    assert records[-1]["client_cert_subject"] == "gascap-sandbox-client"
    assert records[-1]["status"] == 202
    everything = pge.control("GET", "requests").text + pge.control("GET", "notifications").text
    assert tokens["access_token"] not in everything
    assert tokens["refresh_token"] not in everything
    deadline = time.monotonic() + 5
    while not pge.control("GET", "notifications").json() and time.monotonic() < deadline:
        time.sleep(0.05)
    [sent] = pge.control("GET", "notifications").json()
    assert sent["status"] == 200


def test_every_notification_names_its_data_with_a_correlation_id(
    pge: Pge, listener: Listener, sandbox: SandboxServer
) -> None:
    """Like PG&E's real BatchList (tests/fixtures/pge_smd_2020_notification_batchlist_malformed.xml:
    `Batch/Bulk/50916?correlationID=<uuid>`): whichever way the sandbox notifies, each URL is a
    Batch URL with a correlationID alone, never a bare Batch URL that would start a new
    request (docs/pge-protocol.md, "Data APIs")."""
    import re

    from sandbox.faults import Fault

    shape = re.compile(
        re.escape(sandbox.api_base)
        + r"Batch/(?:Bulk/50098|Subscription/[0-9]+)\?correlationID="
        + r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    )
    token = pge.connect("electric")["access_token"]
    client = pge.client_token()
    electric = sid("electric")
    sandbox.state.fault_add(Fault(kind="duplicate_notification", times=1))
    assert pge.get(f"Batch/Subscription/{electric}", token).status_code == 202
    sandbox.state.fault_add(Fault(kind="notify_before_202", times=1))
    assert pge.get("Batch/Bulk/50098", client).status_code == 202
    assert pge.control("POST", "notify", {"subscription_id": electric}).status_code == 200
    assert pge.control("POST", "notify", {"bulk": True}).status_code == 200
    bodies = listener.wait_for(5)
    urls = [url for body in bodies for url in batchlist_urls(body)]
    assert len(urls) == 5
    assert all(shape.fullmatch(url) for url in urls), urls
