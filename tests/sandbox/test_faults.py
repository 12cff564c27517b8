"""Faults on demand, set from the Python API and from the control endpoint."""

from __future__ import annotations

import time
import zlib
from datetime import date

import pytest
import requests

from sandbox.faults import Fault, FaultError
from sandbox.readings import day_bounds
from sandbox.server import SandboxServer

from .conftest import ESPI, Listener, Pge, parse_xml, sid, upid

DAY = dict(zip(("published-min", "published-max"), day_bounds(date(2025, 11, 12)), strict=True))


def feed_path(key: str) -> str:
    return f"Batch/Subscription/{sid(key)}/UsagePoint/{upid(key)}"


@pytest.fixture
def electric(pge: Pge) -> str:
    return pge.connect("electric")["access_token"]


def add(sandbox: SandboxServer, **fields: object) -> None:
    sandbox.state.fault_add(Fault(**fields))  # type: ignore[arg-type]


def test_http_503_n_times_then_normal(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="http_503", times=2)
    statuses = [pge.get(feed_path("electric"), electric, params=DAY).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_fault_for_one_customer_leaves_the_others_alone(
    pge: Pge, sandbox: SandboxServer, electric: str
) -> None:
    gas = pge.connect("gas")["access_token"]
    add(sandbox, kind="http_503", subscription_id=sid("gas"), times=None)
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 200
    assert pge.get(feed_path("gas"), gas, params=DAY).status_code == 503
    assert pge.get(feed_path("gas"), gas, params=DAY).status_code == 503  # until cleared
    pge.control("DELETE", "faults")
    assert pge.get(feed_path("gas"), gas, params=DAY).status_code == 200


def test_slow_answer(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="slow", seconds=0.6)
    began = time.monotonic()
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 200
    assert time.monotonic() - began >= 0.6
    with pytest.raises(requests.exceptions.ReadTimeout):
        add(sandbox, kind="slow", seconds=1.0)
        pge.session.get(
            sandbox.api_base + feed_path("electric"),
            headers={"Authorization": f"Bearer {electric}"},
            timeout=0.3,
        )


def test_rate_limit_with_retry_after(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="rate_limit", seconds=7)
    answer = pge.get(feed_path("electric"), electric, params=DAY)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 200


def test_expired_token_is_403_once(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="expired_token")
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 403
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 200


def test_revoked_consent(pge: Pge, sandbox: SandboxServer) -> None:
    tokens = pge.connect("solar")
    client = pge.client_token()
    pge.control("POST", "faults", {"kind": "revoked", "subscription_id": sid("solar")})
    assert pge.get(feed_path("solar"), tokens["access_token"], params=DAY).status_code == 403
    entry = parse_xml(pge.get(f"Authorization/{sid('solar')}", client).content)
    assert entry.findtext(f".//{ESPI}status") == "0"
    refresh = pge.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


def test_duplicate_notification(pge: Pge, sandbox: SandboxServer, listener: Listener) -> None:
    token = pge.connect("gas")["access_token"]
    add(sandbox, kind="duplicate_notification")
    assert pge.get(f"Batch/Subscription/{sid('gas')}", token).status_code == 202
    bodies = listener.wait_for(2)
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]


def test_notification_before_the_202(pge: Pge, sandbox: SandboxServer, listener: Listener) -> None:
    token = pge.connect("gas")["access_token"]
    add(sandbox, kind="notify_before_202", subscription_id=sid("gas"))
    answer = pge.get(f"Batch/Subscription/{sid('gas')}", token)
    # The listener already holds the BatchList when the 202 reaches the client.
    assert len(listener.bodies) == 1
    assert answer.status_code == 202


def test_malformed_xml(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="malformed_xml")
    answer = pge.get(feed_path("electric"), electric, params=DAY)
    assert answer.status_code == 200
    with pytest.raises(Exception, match=r"(?i)undefined entity|not well-formed|unclosed"):
        parse_xml(answer.content)


def test_oversized_body(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="oversized", size=3 * 1024 * 1024 + 17)
    answer = pge.get(feed_path("electric"), electric, params=DAY)
    assert answer.status_code == 200
    assert len(answer.content) == 3 * 1024 * 1024 + 17
    assert parse_xml(answer.content).tag.endswith("feed")  # well-formed, just big


def test_gzip_bomb(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    size = 50 * 1024 * 1024
    add(sandbox, kind="gzip_bomb", size=size)
    answer = pge.get(feed_path("electric"), electric, params=DAY, stream=True)
    assert answer.headers["Content-Encoding"] == "gzip"
    wire = answer.raw.read(decode_content=False)
    assert len(wire) < size / 500  # tiny on the wire
    inflated = zlib.decompressobj(31)
    total = sum(len(inflated.decompress(wire[i : i + 65536])) for i in range(0, len(wire), 65536))
    assert total == size


def test_redirect_to_another_host(pge: Pge, sandbox: SandboxServer, electric: str) -> None:
    add(sandbox, kind="redirect", location="https://elsewhere.invalid/steal")
    answer = pge.get(feed_path("electric"), electric, params=DAY, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "https://elsewhere.invalid/steal"


def test_token_endpoint_faults(pge: Pge, sandbox: SandboxServer) -> None:
    add(sandbox, kind="http_503", endpoint="token")
    assert pge.token({"grant_type": "client_credentials"}).status_code == 503
    assert pge.token({"grant_type": "client_credentials"}).status_code == 200


def test_control_endpoint_sets_lists_and_rejects_faults(pge: Pge, electric: str) -> None:
    created = pge.control("POST", "faults", {"kind": "http_503", "times": 1})
    assert created.status_code == 201
    assert [f["kind"] for f in pge.control("GET", "faults").json()] == ["http_503"]
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 503
    assert pge.control("GET", "faults").json() == []  # used up
    assert pge.control("POST", "faults", {"kind": "meteor"}).status_code == 400
    assert pge.control("POST", "faults", {"kind": "slow", "speed": 1}).status_code == 400


def test_reset_forgets_tokens(pge: Pge, electric: str) -> None:
    assert pge.control("POST", "reset").status_code == 200
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 403


def test_fault_validation() -> None:
    with pytest.raises(FaultError):
        Fault(kind="http_503", times=0)
    with pytest.raises(FaultError):
        Fault(kind="http_503", endpoint="elsewhere")
    assert Fault(kind="duplicate_notification").endpoint == "notify"


def test_reset_drops_the_connection_without_an_answer(
    pge: Pge, sandbox: SandboxServer, electric: str
) -> None:
    add(sandbox, kind="reset", times=1)
    with pytest.raises(requests.ConnectionError):
        pge.get(feed_path("electric"), electric, params=DAY)
    assert pge.get(feed_path("electric"), electric, params=DAY).status_code == 200
    add(sandbox, kind="reset", endpoint="token")
    with pytest.raises(requests.ConnectionError):
        pge.token({"grant_type": "client_credentials"})
    assert pge.token({"grant_type": "client_credentials"}).status_code == 200
