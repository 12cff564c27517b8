"""Scale mode (sandbox/scale.py): N synthetic consents answered through Bulk, the BatchList
naming several correlation documents that together carry every customer's readings once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from sandbox import scale
from sandbox.config import sandbox_config
from sandbox.readings import day_bounds, local_date
from sandbox.server import SandboxServer
from sandbox.state import FakeClock, SandboxState

from .conftest import ATOM, ESPI, REDIRECT_URI, Listener, Pge, parse_xml
from .test_async import batchlist_urls

CUSTOMERS = 5


@pytest.fixture
def scaled(certs, clock: FakeClock, listener: Listener) -> Iterator[SandboxServer]:
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url=listener.url,
        notify_delay=0.1,
        redirect_uris=(REDIRECT_URI,),
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        bulk_id="50098",
        scale_customers=CUSTOMERS,
        scale_per_document=2,
    )
    server = SandboxServer(SandboxState(clock=clock), config).start()
    yield server
    server.stop()


def test_customers_are_deterministic_and_mixed() -> None:
    first, second = scale.scale_customer(0), scale.scale_customer(1)
    assert scale.scale_customer(1) == second
    assert [up.service_kind for up in first.usage_points] == [0]
    assert [up.service_kind for up in second.usage_points] == [0, 1]
    assert [s.interval for up in second.usage_points for s in up.series] == [900, 86400]
    assert scale.scale_customer_by_subscription(second.subscription_id, count=2) == second
    assert scale.scale_customer_by_subscription(second.subscription_id, count=1) is None
    assert scale.scale_customer_by_subscription("not-a-sid", count=10) is None
    assert scale.scale_slices(count=5, per_document=2) == [(0, 2), (2, 4), (4, 5)]


def test_bulk_answers_with_several_documents_covering_every_customer_once(
    scaled: SandboxServer, certs, clock: FakeClock, listener: Listener
) -> None:
    pge = Pge(scaled, certs)
    token = pge.client_token()
    today = local_date(clock())
    days = [date.fromordinal(today.toordinal() - 2), date.fromordinal(today.toordinal() - 1)]
    start, _ = day_bounds(days[0])
    _, end = day_bounds(days[-1])
    answer = pge.get(
        "Batch/Bulk/50098", token, params={"published-min": start, "published-max": end}
    )
    assert answer.status_code == 202
    [body] = listener.wait_for(1)
    urls = batchlist_urls(body)
    assert len(urls) == 3  # 5 customers, 2 per document (the sandbox's split)
    assert all(u.startswith(f"{scaled.api_base}Batch/Bulk/50098?correlationID=") for u in urls)

    subscriptions: list[str] = []
    readings = value_sum = start_sum = 0
    for url in urls:
        data = pge.get(url, token)
        assert data.status_code == 200
        root = parse_xml(data.content)
        for entry in root.findall(f"{ATOM}entry"):
            if entry.find(f"{ATOM}content/{ESPI}UsagePoint") is not None:
                href = entry.find(f"{ATOM}link[@rel='self']").get("href", "")
                subscriptions.append(href.split("/Subscription/")[1].split("/")[0])
        for reading in root.iter(f"{ESPI}IntervalReading"):
            readings += 1
            value_sum += int(reading.findtext(f"{ESPI}value"))
            start_sum += int(reading.findtext(f"{ESPI}timePeriod/{ESPI}start"))
    # Customer 1 and 3 have two usage points: 7 usage points of 5 distinct subscriptions.
    assert sorted(set(subscriptions)) == scale.scale_subscription_ids(CUSTOMERS)
    assert len(subscriptions) == 7
    assert (readings, value_sum, start_sum) == scale.scale_expected(
        count=CUSTOMERS, days=days, today=today
    )
    assert readings == 2 * (5 * 96 + 2)  # two ordinary days: 96 electric, 1 gas reading each
    # A customer token does not reach Bulk, even in scale mode.
    assert pge.get("Batch/Bulk/50098", "nope").status_code == 403
