"""Production settings: deploy checks green with placeholders, required variables enforced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "gascap.settings.production",
    "DJANGO_SECRET_KEY": "placeholder-" + "x" * 60,
    "DJANGO_ALLOWED_HOSTS": "gascap.example.org",
    "DATABASE_URL": "sqlite:////tmp/gascap-deploy-check.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "GASCAP_FIELD_ENCRYPTION_KEYS": "placeholder",
    "GASCAP_NOTIFY_TOKEN": "placeholder-notify-token",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GASCAP_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    clean["GASCAP_VAR_DIR"] = "/tmp/gascap-deploy-check-var"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _field_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_deploy_checks_pass_with_production_settings() -> None:
    env = {**PRODUCTION_ENV, "GASCAP_FIELD_ENCRYPTION_KEYS": _field_key()}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "GASCAP_NOTIFY_TOKEN"])
def test_missing_required_variable_stops_startup_naming_it(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_security_block() -> None:
    env = {**PRODUCTION_ENV, "GASCAP_FIELD_ENCRYPTION_KEYS": _field_key()}
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_PROXY_SSL_HEADER, s.X_FRAME_OPTIONS, s.GASCAP_ADMIN_PATH,"
        " 'sandbox' in s.INSTALLED_APPS)"
    )
    result = _manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    debug, hsts, session_secure, csrf_secure, *_rest = result.stdout.split(" ", 4)
    assert debug == "False"
    assert int(hsts) >= 31536000
    assert session_secure == "True" and csrf_secure == "True"
    assert "HTTP_X_FORWARDED_PROTO" in result.stdout
    assert "DENY" in result.stdout
    assert "operators/" in result.stdout
    # The sandbox (a fake PG&E) is never installed in production.
    assert result.stdout.strip().endswith("False")


def test_celery_reliability_settings() -> None:
    from gascap.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.task_ignore_result is True
    assert conf.task_time_limit < settings.CELERY_VISIBILITY_TIMEOUT
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.beat_scheduler == "gascap.beat:HeartbeatScheduler"


def test_embedded_default_needs_no_server() -> None:
    """With neither DATABASE_URL nor REDIS_URL, gascap runs on SQLite and a file broker."""
    env = {"DJANGO_SETTINGS_MODULE": "gascap.settings.local"}
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    result = _manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


def _var_dir_env(value: str) -> dict[str, str]:
    return {**PRODUCTION_ENV, "GASCAP_FIELD_ENCRYPTION_KEYS": _field_key(), "GASCAP_VAR_DIR": value}


def test_empty_var_dir_means_the_default() -> None:
    """`.env.example` ships `GASCAP_VAR_DIR=` empty: that is the default, not the cwd."""
    code = "from django.conf import settings as s; print(s.VAR_DIR)"
    result = _manage("shell", "--no-imports", "-c", code, env=_var_dir_env(""))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROOT / "var")


def test_a_var_dir_that_cannot_be_written_stops_startup_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = blocker / "var"  # under a regular file: not even root can create it
    result = _manage("check", env=_var_dir_env(str(unwritable)))
    assert result.returncode != 0
    assert f"GASCAP_VAR_DIR {unwritable} cannot be written" in result.stderr
