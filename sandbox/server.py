"""The sandbox's HTTPS server: the standard library's threading HTTP server behind an
`ssl.SSLContext` that asks for a client certificate signed by the sandbox CA (optional at
the TLS level, so the consent page works in a browser; the API and token endpoint refuse a
request without one, like PG&E).

`SandboxServer(state, config, host, port).start()` runs it in a thread (tests, port 0);
`serve_forever()` runs it in the foreground (`manage.py run_sandbox`).
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.app import SandboxApp
from sandbox.certs import CertPaths
from sandbox.config import SandboxConfig
from sandbox.state import SandboxState
from sandbox.web import RESET_STATUS, Request, Response

logger = logging.getLogger(__name__)
MAX_REQUEST_BODY = 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0


def _subject_cn(cert: dict[str, Any] | None) -> str | None:
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "(no common name)"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gascap-sandbox/0.1"
    server: _TlsServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: never headers (bearer tokens) or bodies (codes, secrets).
        logger.debug("sandbox %s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            self.close_connection = True  # the unread body must not become the next request
            self._write(Response(413, b"Request Entity Too Large"))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_cert_subject=_subject_cn(cert),
        )
        try:
            response = self.server.app.handle(request)
        except Exception:
            logger.exception("sandbox: error answering %s %s", self.command, parts.path)
            response = Response(500, b"Internal Server Error")
        if response.status == RESET_STATUS:
            # Linger 0: the close below sends a TCP RST, not a TLS close_notify or a FIN.
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        try:
            if isinstance(response.body, bytes):
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            else:
                # A streamed body (oversized / gzip bomb): length unknown, ends at close.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self._stream(response.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True  # the client gave up (a capped download does)

    def _stream(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.wfile.write(chunk)


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    app: SandboxApp

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, app: SandboxApp) -> None:
        self.context = context
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow or broken
        # client never blocks the accept loop.
        try:
            request.settimeout(HANDSHAKE_TIMEOUT)
            tls = self.context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            logger.info("sandbox: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("sandbox: connection error with %s", client_address, exc_info=True)


def tls_context(certs: CertPaths) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certs.server_cert, certs.server_key)
    context.load_verify_locations(cafile=str(certs.ca))
    # Optional at the TLS level: the consent page is for browsers; the app refuses API and
    # token calls without a verified client certificate.
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


class SandboxServer:
    """A running sandbox. `base_url` is known once constructed (port 0 picks a free port)."""

    def __init__(
        self,
        state: SandboxState,
        config: SandboxConfig,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        certs = CertPaths(config.cert_dir)
        if not certs.complete():
            raise FileNotFoundError(
                f"sandbox certificates missing in {config.cert_dir}: run manage.py sandbox_certs"
            )
        self.state = state
        self.config = config
        self.app = SandboxApp(state=state, config=config, base_url="https://pending")
        self._httpd = _TlsServer((host, port), tls_context(certs), self.app)
        self.port = self._httpd.server_address[1]
        self.app.base_url = f"https://{config.public_host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self.app.base_url

    @property
    def api_base(self) -> str:
        return self.app.api_base

    def start(self) -> SandboxServer:
        # A short poll interval so stop() returns quickly (tests start one per test).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sandbox-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self.app.notifier.cancel_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
