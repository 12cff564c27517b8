"""`manage.py sandbox_certs`: a CA, a server certificate for localhost and a client
certificate, idempotent, private keys readable by the owner only."""

from __future__ import annotations

import ssl
import stat
from io import StringIO
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from django.core.management import call_command

NAMES = ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")


def run(directory: Path, *extra: str) -> str:
    out = StringIO()
    call_command("sandbox_certs", "--dir", str(directory), *extra, stdout=out)
    return out.getvalue()


def test_creates_ca_server_and_client_certificates(tmp_path: Path) -> None:
    run(tmp_path)
    for name in NAMES:
        assert (tmp_path / name).is_file(), name
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    client = x509.load_pem_x509_certificate((tmp_path / "client.pem").read_bytes())
    assert server.issuer == ca.subject
    assert client.issuer == ca.subject
    sans = server.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    cn = client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "gascap-sandbox-client"
    # The chain loads as a TLS identity (certificate matches key).
    ssl.create_default_context().load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    run(tmp_path)
    for name in ("server.key", "client.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_second_run_keeps_the_files_and_force_replaces_them(tmp_path: Path) -> None:
    run(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in NAMES}
    assert "Kept existing" in run(tmp_path)
    assert before == {name: (tmp_path / name).read_bytes() for name in NAMES}
    run(tmp_path, "--force")
    assert (tmp_path / "ca.pem").read_bytes() != before["ca.pem"]
    assert stat.S_IMODE((tmp_path / "client.key").stat().st_mode) == 0o600


def test_missing_file_is_regenerated(tmp_path: Path) -> None:
    run(tmp_path)
    (tmp_path / "client.key").unlink()
    assert "Created" in run(tmp_path)
    assert (tmp_path / "client.key").is_file()
