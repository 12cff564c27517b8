"""Going live (Django side): the client certificate's expiry as a system check (gascap.W002)
and an admin banner for operators, and the PG&E environment switch in the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core import checks
from django.test import Client

from gascap.checks import check_pge_client_certificate
from tests.foundation.test_settings import PRODUCTION_ENV, _field_key, _manage

ADMIN = "/" + django_settings.GASCAP_ADMIN_PATH


def client_cert(directory: Path, *, days: float) -> Path:
    """A CA-issued client certificate expiring `days` from now (trustme)."""
    not_after = datetime.now(UTC) + timedelta(days=days)
    leaf = trustme.CA().issue_cert("gascap-client.example", not_after=not_after)
    path = directory / f"client-{days}.pem"
    leaf.cert_chain_pems[0].write_to_path(str(path))
    return path


# --- system check -----------------------------------------------------------------------------
def test_a_certificate_expiring_within_30_days_is_a_warning(settings, tmp_path: Path) -> None:
    settings.GASCAP_PGE_CLIENT_CERT = str(client_cert(tmp_path, days=12.5))
    [message] = check_pge_client_certificate()
    assert isinstance(message, checks.Warning)
    assert message.id == "gascap.W002"
    assert "expires in 12 day(s)" in message.msg
    # It is registered: `manage.py check` reports it.
    assert "gascap.W002" in [m.id for m in checks.run_checks()]


def test_an_expired_certificate_is_a_warning_saying_so(settings, tmp_path: Path) -> None:
    settings.GASCAP_PGE_CLIENT_CERT = str(client_cert(tmp_path, days=-3))
    [message] = check_pge_client_certificate()
    assert message.id == "gascap.W002" and "has expired" in message.msg


def test_a_certificate_with_time_left_is_no_warning(settings, tmp_path: Path) -> None:
    settings.GASCAP_PGE_CLIENT_CERT = str(client_cert(tmp_path, days=31))
    assert check_pge_client_certificate() == []
    settings.GASCAP_PGE_CERT_WARN_DAYS = 60
    assert [m.id for m in check_pge_client_certificate()] == ["gascap.W002"]


def test_no_or_unreadable_certificate_is_left_to_pge_check(settings, tmp_path: Path) -> None:
    settings.GASCAP_PGE_CLIENT_CERT = ""
    assert check_pge_client_certificate() == []
    settings.GASCAP_PGE_CLIENT_CERT = str(tmp_path / "missing.pem")
    assert check_pge_client_certificate() == []


# --- admin banner -----------------------------------------------------------------------------
@pytest.fixture
def staff_client(db) -> Client:
    user = User.objects.create_superuser("op-cert", "op@example.test", "op-cert-pass-4K")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_index_shows_the_banner_to_operators(
    settings, tmp_path: Path, staff_client: Client
) -> None:
    settings.GASCAP_PGE_CLIENT_CERT = str(client_cert(tmp_path, days=5.5))
    page = staff_client.get(ADMIN).content.decode()
    assert 'id="gascap-certificate-warning"' in page
    assert "expires in 5 day(s)" in page
    # The login page (anyone can load it) never shows it.
    login = Client().get(f"{ADMIN}login/").content.decode()
    assert "gascap-certificate-warning" not in login


def test_no_banner_while_the_certificate_has_time_left(
    settings, tmp_path: Path, staff_client: Client
) -> None:
    settings.GASCAP_PGE_CLIENT_CERT = str(client_cert(tmp_path, days=90))
    page = staff_client.get(ADMIN).content.decode()
    assert "gascap-certificate-warning" not in page


# --- the environment switch -------------------------------------------------------------------
SHOW = (
    "from django.conf import settings as s; print(s.GASCAP_PGE_ENVIRONMENT); "
    "print(s.GASCAP_PGE_API_BASE); print(s.GASCAP_PGE_TOKEN_URL); "
    "print(s.GASCAP_PGE_AUTHORIZE_URL); print(s.GASCAP_PGE_CA_BUNDLE)"
)


def _urls(env: dict[str, str]) -> list[str]:
    result = _manage("shell", "--no-imports", "-c", SHOW, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_production_settings_default_to_pge_production_and_switch_to_qa() -> None:
    env = {**PRODUCTION_ENV, "GASCAP_FIELD_ENCRYPTION_KEYS": _field_key()}
    assert _urls(env) == [
        "production",
        "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/",
        "https://api.pge.com/datacustodian/oauth/v2/token",
        "https://sharemydata.pge.com/myAuthorization",
        "None",
    ]
    qa = _urls({**env, "GASCAP_PGE_ENVIRONMENT": "qa"})
    assert qa[1:4] == [
        "https://apiqa.pge.com/GreenButtonConnect/espi/1_1/resource/",
        "https://apiqa.pge.com/datacustodian/oauth/v2/token",
        "https://sharemydataqa.pge.com/myAuthorization/",
    ]
    # An explicit URL overrides its one URL; an empty one (as .env.example has) does not.
    custom = _urls(
        {
            **env,
            "GASCAP_PGE_ENVIRONMENT": "qa",
            "GASCAP_PGE_TOKEN_URL": "https://apiqa.pge.com/custom/oauth/v2/token",
            "GASCAP_PGE_API_BASE": "",
        }
    )
    assert custom[1:3] == [
        "https://apiqa.pge.com/GreenButtonConnect/espi/1_1/resource/",
        "https://apiqa.pge.com/custom/oauth/v2/token",
    ]


def test_local_settings_default_to_the_sandbox_and_qa_drops_its_credentials() -> None:
    local = {"DJANGO_SETTINGS_MODULE": "gascap.settings.local"}
    sandbox = _urls(local)
    assert sandbox[0] == "sandbox"
    assert sandbox[2] == "https://localhost:8443/datacustodian/oauth/v2/token"
    assert sandbox[4].endswith("certs/ca.pem")
    qa = _urls({**local, "GASCAP_PGE_ENVIRONMENT": "qa"})
    assert qa[2] == "https://apiqa.pge.com/datacustodian/oauth/v2/token"
    assert qa[4] == "None"  # PG&E's server is verified by the system store, not the sandbox CA


@pytest.mark.parametrize(
    ("module", "environment", "message"),
    [
        ("gascap.settings.production", "staging", "GASCAP_PGE_ENVIRONMENT"),
        ("gascap.settings.production", "sandbox", "gascap.settings.local"),
    ],
)
def test_an_unknown_or_unavailable_environment_stops_startup(
    module: str, environment: str, message: str
) -> None:
    env = {
        **PRODUCTION_ENV,
        "GASCAP_FIELD_ENCRYPTION_KEYS": _field_key(),
        "DJANGO_SETTINGS_MODULE": module,
        "GASCAP_PGE_ENVIRONMENT": environment,
    }
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert message in result.stderr
