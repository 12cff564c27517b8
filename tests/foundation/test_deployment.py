"""docker-compose.yml and the Procfile name modules, settings and commands that exist."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import yaml
from django.conf import settings
from django.core.management import get_commands
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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
            # The queues gascap.celery.worker_argv starts the tests' and the demo's workers on.
            assert set(queues) == set(settings.CELERY_TASK_QUEUES_NAMES)
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
    assert {"proxy", "postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    for name in ("web", "web2", "worker", "beat", "migrate"):
        service = services[name]
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "gascap.settings.production"
        importlib.import_module("gascap.settings.base")
        _check_command(service["command"])
        assert service["env_file"] == ".env"
    # Every long-running service has a health check, and ours run real code.
    for name in ("proxy", "postgres", "redis", "web", "web2", "worker", "beat"):
        assert "healthcheck" in services[name], name
    web_check = services["web"]["healthcheck"]["test"]
    assert web_check[1:4] == ["python", "-m", "gascap.healthcheck"]
    importlib.import_module("gascap.healthcheck")
    beat_check = services["beat"]["healthcheck"]["test"]
    assert beat_check[1:] == ["python", "manage.py", "beat_health"]
    assert "beat_health" in get_commands()
    assert set(compose["volumes"]) >= {"pgdata", "redisdata"}
    assert "noeviction" in services["redis"]["command"]


def test_every_deploy_migrates_before_the_app_starts() -> None:
    services = _compose()["services"]
    for name in ("web", "web2", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    for name in ("web", "web2"):
        assert services["proxy"]["depends_on"][name] == {"condition": "service_healthy"}


def test_only_the_proxy_is_published_and_gunicorn_trusts_only_it() -> None:
    compose = _compose()
    services = compose["services"]
    assert [name for name, s in services.items() if "ports" in s] == ["proxy"]
    proxy_ip = services["proxy"]["networks"]["proxy_web"]["ipv4_address"]
    assert compose["networks"]["proxy_web"]["internal"] is True
    on_proxy_web = [n for n, s in services.items() if "proxy_web" in (s.get("networks") or [])]
    assert sorted(on_proxy_web) == ["proxy", "web", "web2"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstreams = re.findall(r"^\s*server (\S+?)[ ;]", nginx, re.M)
    binds = []
    for name in ("web", "web2"):
        service = services[name]
        address = service["networks"]["proxy_web"]["ipv4_address"]
        command = service["command"]
        _check_command(command)
        bind = command[command.index("--bind") + 1]
        assert bind == f"{address}:8000", name  # not 0.0.0.0: only the proxy's network
        assert command[command.index("--forwarded-allow-ips") + 1] == proxy_ip, name
        assert service["healthcheck"]["test"][-1] == f"http://{bind}/healthz", name
        # One trusted proxy, which overwrites X-Forwarded-For: the lockout reads the last hop.
        assert service["environment"]["GASCAP_ADMIN_PROXY_COUNT"] == "1", name
        assert "--access-logfile" not in command  # the webhook's path holds its token
        binds.append(bind)
    assert upstreams == binds


def test_the_proxy_sets_forwarded_headers_alone_and_caps_bodies_and_slow_clients() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    directives = {
        line.strip().rstrip(";") for line in conf.splitlines() if not line.strip().startswith("#")
    }
    assert "proxy_set_header X-Forwarded-For $remote_addr" in directives
    assert "proxy_add_x_forwarded_for" not in conf  # appending would keep the client's value
    assert "proxy_set_header X-Forwarded-Proto $scheme" in directives
    for header in ("X-Forwarded-Host", "X-Forwarded-Port", "Forwarded"):
        assert f'proxy_set_header {header} ""' in directives, header
    assert "proxy_request_buffering on" in directives
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert f"{timeout} 10s" in directives, timeout
    # The same cap as the webhook (GASCAP_NOTIFY_MAX_BODY_BYTES, default 256 KiB).
    assert "client_max_body_size 256k" in directives
    assert settings.GASCAP_NOTIFY_MAX_BODY_BYTES == 256 * 1024
    assert "listen 443 ssl default_server" in directives
    # The access log masks the webhook's token and drops query strings (OAuth codes).
    assert "access_log /dev/stdout gascap" in directives
    assert '~^/pge/notify/ "/pge/notify/<token>/"' in directives
    assert "error_log stderr crit" in directives


def test_compose_image_is_built_by_the_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.lock ." in dockerfile
    assert "--require-hashes" in dockerfile and "-r requirements.lock" in dockerfile
    assert "requirements.txt" not in dockerfile
    assert "gascap.settings.production" in dockerfile
    assert _compose()["services"]["web"]["build"] == "."
    # No secret is ever put into the image: no ENV or ARG naming one.
    for line in dockerfile.replace("\\\n", " ").splitlines():
        if line.startswith(("ENV", "ARG")):
            for name in ("SECRET", "KEY", "TOKEN", "PASSWORD"):
                assert name not in line, line


# --- The build context (.dockerignore) -----------------------------------------------------


def test_the_build_context_holds_no_secret_path(tmp_path: Path) -> None:
    """What `docker build` would send from an operator's folder, by Docker's own rules
    (docker-py's implementation; no engine needed)."""
    from deploy.context import build_context, context_problems, operator_layout

    folder = operator_layout(ROOT, tmp_path / "operator")
    members = build_context(folder, tmp_path / "context.tar")
    assert context_problems(members) == []
    assert "gascap/settings/production.py" in members
    assert not any(m.startswith(("tests/", "sandbox/", "docs/")) for m in members)


def test_the_context_check_catches_a_missing_dockerignore(tmp_path: Path) -> None:
    from deploy.context import build_context, context_problems, operator_layout

    folder = operator_layout(ROOT, tmp_path / "operator")
    (folder / ".dockerignore").unlink()
    problems = context_problems(build_context(folder, tmp_path / "context.tar"))
    for secret in (".env", "secrets/pge/client.key.pem", "var/field-encryption.key", ".git/config"):
        assert f"secret path in the build context: {secret}" in problems, secret


# --- Dependencies ---------------------------------------------------------------------------


def _requirements(name: str) -> list[Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    return [
        Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-r"))
    ]


def _lock() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            current = canonicalize_name(name)
            pins[current] = (rest.split()[0].rstrip(";"), [])
        elif line.strip().startswith("--hash=sha256:") and current:
            pins[current][1].append(line.strip().split(":", 1)[1].rstrip(" \\"))
    return pins


def test_the_lock_pins_every_runtime_requirement_with_hashes() -> None:
    pins = _lock()
    assert pins, "requirements.lock is empty"
    for requirement in _requirements("requirements.txt"):
        version, hashes = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), (requirement, version)
        for extra in requirement.extras:  # celery[redis] -> redis, psycopg[binary] -> ...-binary
            assert extra in pins or f"{requirement.name}-{extra}" in pins, (requirement, extra)
    for name, (version, hashes) in pins.items():
        assert hashes and all(len(h) == 64 for h in hashes), name
        assert version, name


def test_development_tools_stay_out_of_the_runtime_requirements() -> None:
    runtime = {canonicalize_name(r.name) for r in _requirements("requirements.txt")}
    dev = {canonicalize_name(r.name) for r in _requirements("requirements-dev.txt")}
    tools = {"honcho", "trustme", "docker", "uv", "pytest"}
    assert not tools & runtime
    assert not tools & set(_lock())
    assert {"honcho", "trustme", "docker"} <= dev
    assert (ROOT / "requirements-dev.txt").read_text().startswith("-r requirements.txt")


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
