"""Fixtures for the sandbox tests: certificates in a temp dir (never the developer's var/),
a running sandbox over real mutual TLS with a fake clock, a notification listener, and a
small PG&E client built on plain `requests` (independent of gascap.pge on purpose)."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.certs import CertPaths, certs_ensure
from sandbox.config import sandbox_config
from sandbox.demo import customer_by_key
from sandbox.server import SandboxServer
from sandbox.state import FakeClock, SandboxState

ATOM = "{http://www.w3.org/2005/Atom}"
ESPI = "{http://naesb.org/espi}"
REDIRECT_URI = "http://localhost:8000/consent/callback/"
# A fixed "now": 2025-11-20 20:00 UTC (noon in California), after the 2025-11-02 fall-back.
NOW = datetime(2025, 11, 20, 20, 0, tzinfo=UTC).timestamp()


def parse_xml(data: bytes) -> ET.Element:
    """Namespace-aware parse with the standard library.

    Deliberately not gascap.pge.safexml: these tests check the sandbox's output with a parser
    that shares nothing with gascap's. The input is the sandbox's own trusted output.
    """
    return ET.fromstring(data)  # noqa: S314


@dataclass
class Listener:
    url: str
    bodies: list[bytes] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.bodies) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.arrived.wait(remaining)
            return list(self.bodies)


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A tiny HTTP server standing in for gascap's notification webhook."""
    holder: dict[str, Listener] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = holder["listener"]
            with target.arrived:
                target.bodies.append(body)
                target.arrived.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    holder["listener"] = Listener(f"http://127.0.0.1:{server.server_address[1]}/pge/notify/t/")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield holder["listener"]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    paths, _ = certs_ensure(directory=tmp_path_factory.mktemp("certs"))
    return paths


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sandbox(certs: CertPaths, clock: FakeClock, listener: Listener) -> Iterator[SandboxServer]:
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url=listener.url,
        notify_delay=0.1,
        redirect_uris=(REDIRECT_URI,),
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        bulk_id="50098",
    )
    server = SandboxServer(SandboxState(clock=clock), config).start()
    yield server
    server.stop()


class Pge:
    """A minimal PG&E client over real mTLS: plain requests, nothing from gascap.pge."""

    def __init__(self, server: SandboxServer, certs: CertPaths, *, with_cert: bool = True) -> None:
        self.server = server
        self.certs = certs
        self.session = requests.Session()
        # The environment's CA bundle variables would override `verify` (requests #3829).
        self.session.trust_env = False
        self.session.verify = str(certs.ca)
        if with_cert:
            self.session.cert = (str(certs.client_cert), str(certs.client_key))
        self.auth = ("sandbox-client", "sandbox-secret")

    def token(self, data: dict[str, str], auth: tuple[str, str] | None = None) -> requests.Response:
        return self.session.post(
            f"{self.server.base_url}/datacustodian/oauth/v2/token",
            data=data,
            auth=auth or self.auth,
            timeout=10,
        )

    def consent_params(self, **overrides: str) -> dict[str, str]:
        params = {
            "client_id": "sandbox-client",
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "state": "state-123",
        }
        params.update(overrides)
        return params

    def approve(self, customer: str, **overrides: str) -> requests.Response:
        return self.session.post(
            f"{self.server.base_url}/myAuthorization",
            data={**self.consent_params(**overrides), "customer": customer, "decision": "approve"},
            allow_redirects=False,
            timeout=10,
        )

    def code_for(self, customer: str) -> str:
        answer = self.approve(customer)
        assert answer.status_code == 302, answer.text
        return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]

    def connect(self, customer: str) -> dict[str, str]:
        """Consent + code exchange: the token answer of a customer."""
        answer = self.token(
            {
                "grant_type": "authorization_code",
                "code": self.code_for(customer),
                "redirect_uri": REDIRECT_URI,
            }
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def client_token(self) -> str:
        answer = self.token({"grant_type": "client_credentials"})
        assert answer.status_code == 200, answer.text
        return answer.json()["client_access_token"]

    def get(self, path_or_url: str, token: str | None, **kwargs: object) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.server.api_base + path_or_url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.session.get(url, headers=headers, timeout=30, **kwargs)

    def delete(self, path: str, token: str) -> requests.Response:
        return self.session.delete(
            self.server.api_base + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def control(self, method: str, action: str, json: object = None) -> requests.Response:
        return self.session.request(
            method, f"{self.server.base_url}/sandbox/control/{action}", json=json, timeout=10
        )


@pytest.fixture
def pge(sandbox: SandboxServer, certs: CertPaths) -> Pge:
    return Pge(sandbox, certs)


def sid(key: str) -> str:
    customer = customer_by_key(key)
    assert customer is not None
    return customer.subscription_id


def upid(key: str) -> str:
    customer = customer_by_key(key)
    assert customer is not None
    return customer.usage_points[0].usage_point_id


def fixture_dir() -> Path:
    return Path(__file__).parent.parent / "fixtures"
