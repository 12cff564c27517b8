"""State persistence, the script-friendly consent driver, `run_sandbox` as a process, and the
sandbox's independence from gascap's PG&E client."""

from __future__ import annotations

import ast
import os
import signal
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.core.management import call_command

from sandbox.certs import CertPaths
from sandbox.drive import ConsentRefused, consent_decide
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

from .conftest import NOW, REDIRECT_URI, FakeClock, Pge, sid

ROOT = Path(__file__).resolve().parents[2]


def authorize_url(sandbox: SandboxServer, **overrides: str) -> str:
    params = {
        "client_id": "sandbox-client",
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "state": "s-1",
        **overrides,
    }
    return f"{sandbox.base_url}/myAuthorization?{urlencode(params)}"


def test_state_file_keeps_tokens_across_a_restart(
    tmp_path: Path, certs: CertPaths, listener
) -> None:
    path = tmp_path / "sandbox" / "state.json"
    config_kwargs = {
        "cert_dir": certs.directory,
        "notify_url": listener.url,
        "redirect_uris": (REDIRECT_URI,),
    }
    from sandbox.config import sandbox_config

    first = SandboxServer(
        SandboxState(clock=FakeClock(NOW), path=path), sandbox_config(**config_kwargs)
    ).start()
    try:
        tokens = Pge(first, certs).connect("gas")
    finally:
        first.stop()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = SandboxServer(
        SandboxState(clock=FakeClock(NOW), path=path), sandbox_config(**config_kwargs)
    ).start()
    try:
        pge = Pge(second, certs)
        assert (
            pge.get(f"Subscription/{sid('gas')}/UsagePoint", tokens["access_token"]).status_code
            == 200
        )
    finally:
        second.stop()


def test_consent_decide_approves_without_a_browser(
    sandbox: SandboxServer, certs: CertPaths
) -> None:
    target = consent_decide(
        authorize_url=authorize_url(sandbox, login="guest"),
        customer="solar",
        ca_bundle=str(certs.ca),
    )
    query = parse_qs(urlsplit(target).query)
    assert target.startswith(REDIRECT_URI)
    assert query["state"] == ["s-1"]
    # The code works at the token endpoint.
    answer = Pge(sandbox, certs).token(
        {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI}
    )
    assert answer.json()["resourceURI"].endswith(sid("solar"))


def test_consent_decide_deny_and_refusal(sandbox: SandboxServer, certs: CertPaths) -> None:
    target = consent_decide(
        authorize_url=authorize_url(sandbox),
        customer="gas",
        decision="deny",
        ca_bundle=str(certs.ca),
    )
    assert parse_qs(urlsplit(target).query)["error"] == ["access_denied"]
    with pytest.raises(ConsentRefused):
        consent_decide(
            authorize_url=authorize_url(sandbox, client_id="intruder"),
            customer="gas",
            ca_bundle=str(certs.ca),
        )


def test_sandbox_consent_command(sandbox: SandboxServer, certs: CertPaths, settings) -> None:
    settings.GASCAP_SANDBOX_CERT_DIR = certs.directory
    out = StringIO()
    call_command("sandbox_consent", authorize_url(sandbox), "--customer", "gas", stdout=out)
    assert "code=" in out.getvalue()


def test_run_sandbox_serves_in_the_foreground(tmp_path: Path, certs: CertPaths) -> None:
    env = {
        **os.environ,
        "GASCAP_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "gascap.settings.local",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_sandbox", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Sandbox PG&E on https://localhost:"), first
        base_url = first.split()[3]
        session = requests.Session()
        session.trust_env = False
        answer = session.get(
            f"{base_url}/sandbox/control/customers",
            verify=str(tmp_path / "certs" / "ca.pem"),
            timeout=10,
        )
        assert [c["name"] for c in answer.json()] == [
            "Demo Electric Home",
            "Demo Solar Home",
            "Demo Gas Home",
        ]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert (tmp_path / "certs" / "client.key").is_file()  # made on first start


def test_sandbox_imports_nothing_from_gascap_pge_or_the_apps() -> None:
    forbidden = ("gascap.pge", "customers", "ingest")
    for path in (ROOT / "sandbox").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path} imports {name}"
