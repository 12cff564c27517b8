"""docker-compose.yml and the Procfile name modules, settings and commands that exist."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _check_command(argv: list[str]) -> None:
    program = Path(argv[0]).name
    if program == "gunicorn":
        module, _, attr = argv[1].partition(":")
        assert hasattr(importlib.import_module(module), attr)
    elif program == "celery":
        assert argv[1:3] == ["-A", "gascap"]
        importlib.import_module("gascap.celery")
        if "-Q" in argv:
            queues = argv[argv.index("-Q") + 1].split(",")
            assert set(queues) == {"default", "ingest", "pge_fetch"}
        if "--scheduler" in argv:
            module, _, attr = argv[argv.index("--scheduler") + 1].partition(":")
            assert hasattr(importlib.import_module(module), attr)
    elif program in ("python", "manage.py") or argv[:2] == ["python", "manage.py"]:
        command = argv[argv.index("manage.py") + 1]
        assert command in get_commands(), command
    else:
        raise AssertionError(f"unexpected program {argv!r}")


def test_compose_services_run_real_commands() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("web", "worker", "beat", "migrate"):
        service = services[name]
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "gascap.settings.production"
        importlib.import_module("gascap.settings.base")
        _check_command(service["command"])
        assert service["env_file"] == ".env"
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name
    assert set(compose["volumes"]) >= {"pgdata", "redisdata"}
    assert "noeviction" in services["redis"]["command"]


def test_compose_image_is_built_by_the_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile
    assert "gascap.settings.production" in dockerfile
    assert _compose()["services"]["web"]["build"] == "."


def test_procfile_processes_exist() -> None:
    for line in (ROOT / "Procfile.dev").read_text().splitlines():
        _name, _, command = line.partition(":")
        argv = shlex.split(command)
        argv[0] = Path(argv[0]).name
        if argv[0] == "python":
            assert argv[2] in get_commands(), argv
        else:
            _check_command(argv)


def test_env_example_documents_every_variable_the_settings_read() -> None:
    import re

    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    read = set()
    for path in (ROOT / "gascap" / "settings").glob("*.py"):
        read |= set(re.findall(r"env\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text()))
    read -= {"GASCAP_SANDBOX_PORT", "GASCAP_SANDBOX_NOTIFY_URL"}  # development only
    missing = sorted(read - documented)
    assert not missing, f".env.example does not document {missing}"
