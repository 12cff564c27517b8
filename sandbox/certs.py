"""Local certificates for the sandbox's mutual TLS, made with trustme: a CA that signs a
server certificate (localhost, 127.0.0.1, ::1) and gascap's client certificate, like the
CA-issued certificate PG&E requires (docs/pge-protocol.md "Hosts and transport")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
CLIENT_NAME = "gascap-sandbox-client"


@dataclass(frozen=True)
class CertPaths:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def all(self) -> tuple[Path, ...]:
        return (self.ca, self.server_cert, self.server_key, self.client_cert, self.client_key)

    def complete(self) -> bool:
        return all(path.is_file() for path in self.all())


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)  # in case the file existed with looser permissions
    os.replace(tmp, path)


def certs_ensure(*, directory: Path, force: bool = False) -> tuple[CertPaths, bool]:
    """Create the CA, server and client certificates unless all exist. (paths, created)."""
    paths = CertPaths(directory)
    if paths.complete() and not force:
        return paths, False
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="gascap sandbox CA")
    server = ca.issue_cert(*SERVER_NAMES, common_name="localhost")
    client = ca.issue_cert(CLIENT_NAME, common_name=CLIENT_NAME)
    _write(paths.ca, ca.cert_pem.bytes(), 0o644)
    _write(paths.server_cert, b"".join(blob.bytes() for blob in server.cert_chain_pems), 0o644)
    _write(paths.server_key, server.private_key_pem.bytes(), 0o600)
    _write(paths.client_cert, b"".join(blob.bytes() for blob in client.cert_chain_pems), 0o644)
    _write(paths.client_key, client.private_key_pem.bytes(), 0o600)
    return paths, True
