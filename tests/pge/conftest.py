"""Fixtures for the PG&E client tests: a config with real (dummy) certificate files, a client,
and a local HTTPS server that requires a client certificate (trustme CAs) for real mutual
TLS. Other test packages may reuse `tls_cas`, `mtls_server` and `mtls_config`."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig

API_BASE = "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/"
TOKEN_URL = "https://api.pge.example/datacustodian/oauth/v2/token"
AUTHORIZE_URL = "https://sharemydata.pge.example/myAuthorization"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret-5c1e"  # a fixture string the tests search for in output


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[str, str]:
    """Client certificate and key files that exist (their content is never used by `responses`)."""
    crt = tmp_path / "client.crt.pem"
    key = tmp_path / "client.key.pem"
    crt.write_text("dummy certificate\n")
    key.write_text("dummy key\n")
    return str(crt), str(key)


@pytest.fixture
def pge_config(cert_files: tuple[str, str]) -> PgeConfig:
    return PgeConfig(
        api_base=API_BASE,
        token_url=TOKEN_URL,
        authorize_url=AUTHORIZE_URL,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_cert=cert_files[0],
        client_key=cert_files[1],
        max_body_bytes=1024 * 1024,
        redirect_uri="https://gascap.example/consent/callback/",
    )


@pytest.fixture
def pge(pge_config: PgeConfig) -> PgeClient:
    return PgeClient(pge_config)


@dataclass
class TlsCas:
    """A CA for the server's certificate and a separate CA that issues client certificates."""

    server_ca: trustme.CA
    client_ca: trustme.CA
    directory: Path

    def server_ca_bundle(self) -> str:
        path = self.directory / "server-ca.pem"
        self.server_ca.cert_pem.write_to_path(str(path))
        return str(path)

    def client_cert_files(
        self, ca: trustme.CA | None = None, name: str = "client"
    ) -> tuple[str, str]:
        """(certificate path, key path) for a client certificate issued by `ca` (default: the
        CA the server trusts)."""
        leaf = (ca or self.client_ca).issue_cert("gascap-test-client")
        crt = self.directory / f"{name}.crt.pem"
        key = self.directory / f"{name}.key.pem"
        crt.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return str(crt), str(key)


@pytest.fixture
def tls_cas(tmp_path: Path) -> TlsCas:
    return TlsCas(server_ca=trustme.CA(), client_ca=trustme.CA(), directory=tmp_path)


@dataclass
class MtlsServer:
    """A loopback HTTPS server requiring a client certificate. `handler(request)` answers
    each request with (status, headers, body); `requests` records what arrived."""

    port: int
    api_base: str
    token_url: str
    requests: list[dict[str, object]] = field(default_factory=list)


def _handler_class(
    server_state: MtlsServer,
    answer: Callable[[dict[str, object]], tuple[int, dict[str, str], bytes]],
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            peer = self.connection.getpeercert()  # type: ignore[attr-defined]
            request = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": self.rfile.read(length) if length else b"",
                "peer_cert": peer,
            }
            server_state.requests.append(request)
            status, headers, body = answer(request)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _serve
        do_POST = _serve
        do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def mtls_server(tls_cas: TlsCas) -> Iterator[Callable[..., MtlsServer]]:
    """Start a server: `mtls_server(answer)`; stopped after the test."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(
        answer: Callable[[dict[str, object]], tuple[int, dict[str, str], bytes]],
    ) -> MtlsServer:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.verify_mode = ssl.CERT_REQUIRED
        tls_cas.client_ca.configure_trust(context)
        tls_cas.server_ca.issue_cert("127.0.0.1").configure_cert(context)
        state = MtlsServer(port=0, api_base="", token_url="")
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(state, answer))
        httpd.daemon_threads = True
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        port = httpd.server_address[1]
        state.port = port
        state.api_base = f"https://127.0.0.1:{port}/GreenButtonConnect/espi/1_1/resource/"
        state.token_url = f"https://127.0.0.1:{port}/datacustodian/oauth/v2/token"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return state

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def mtls_config(tls_cas: TlsCas) -> Callable[..., PgeConfig]:
    """`mtls_config(server, cert=(crt, key))`: a config pointing at an `mtls_server`."""

    def build(server: MtlsServer, cert: tuple[str, str] | None = None) -> PgeConfig:
        crt, key = cert if cert is not None else tls_cas.client_cert_files()
        return PgeConfig(
            api_base=server.api_base,
            token_url=server.token_url,
            authorize_url=f"https://127.0.0.1:{server.port}/myAuthorization",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            client_cert=crt,
            client_key=key,
            ca_bundle=tls_cas.server_ca_bundle(),
            connect_timeout=5,
            read_timeout=5,
        )

    return build
