"""The deployment the production smoke runs (deploy/smoke.py): docker-compose.yml's services
as processes on loopback, with the translation table described there (`Deployment.pairs`)."""

from __future__ import annotations

import http.server
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from deploy.context import build_context, context_problems, extract, operator_layout

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as compose reads an env_file (comments and blanks skipped, one pair of
    surrounding quotes removed)."""
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[key.strip()] = value
    return result


def dockerfile_env(text: str) -> dict[str, str]:
    """The image's ENV (KEY=VALUE pairs of the Dockerfile's ENV instructions)."""
    joined = text.replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.strip().upper().startswith("ENV "):
            for pair in shlex.split(line.strip()[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@dataclass(frozen=True)
class Ports:
    https: int
    http: int
    sandbox: int
    relay: int


class Deployment:
    def __init__(
        self, *, root: Path, work: Path, database_url: str, redis_url: str, token: str
    ) -> None:
        self.root = root
        self.work = work
        self.app = work / "app"  # the unpacked build context: /app in the image
        self.compose = yaml.safe_load((root / "docker-compose.yml").read_text())
        self.services: dict[str, Any] = self.compose["services"]
        self.ports = Ports(*(free_port() for _ in range(4)))
        # gunicorn instances: the services with an address on the proxy's network.
        self.gunicorn = {
            name: free_port()
            for name, service in self.services.items()
            if name != "proxy" and "proxy_web" in (service.get("networks") or {})
        }
        self.token = token
        self.db_name = f"gascap_smoke_{secrets.token_hex(4)}"
        self.server_url = database_url.rsplit("/", 1)[0]
        self.database_url = f"{self.server_url}/{self.db_name}"
        self.redis_url = redis_url.rsplit("/", 1)[0] + "/11"
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}
        self.relay: http.server.ThreadingHTTPServer | None = None
        self.relayed: list[int] = []
        self.db_created = False
        self.pairs = self._translation()
        self.env_file = self._env_file()
        self.host = self.env_file["DJANGO_ALLOWED_HOSTS"].split(",")[0].strip()
        self.edge_ca = work / "edge-ca.pem"
        self.sandbox_ca = work / "sandbox" / "certs" / "ca.pem"

    # --- translation --------------------------------------------------------------------

    def _translation(self) -> list[tuple[str, str]]:
        proxy_ip = self.services["proxy"]["networks"]["proxy_web"]["ipv4_address"]
        pairs = []
        for name, port in self.gunicorn.items():
            address = self.services[name]["networks"]["proxy_web"]["ipv4_address"]
            pairs.append((f"{address}:8000", f"{LOOPBACK}:{port}"))
        pairs += [
            (proxy_ip, LOOPBACK),
            ("listen 443 ", f"listen {LOOPBACK}:{self.ports.https} "),
            ("listen 80 ", f"listen {LOOPBACK}:{self.ports.http} "),
            (f"{LOOPBACK}:80/", f"{LOOPBACK}:{self.ports.http}/"),
            ("$$", "$"),
        ]
        for service in self.services.values():
            for volume in service.get("volumes", []):
                host, _, rest = volume.partition(":")
                container = rest.split(":")[0]
                if host.startswith("./"):
                    pairs.append((container, str(self.work / "mounts" / host[2:])))
        return pairs

    def tr(self, text: str) -> str:
        for old, new in self.pairs:
            text = text.replace(old, new)
        return text

    def mount(self, container_path: str) -> Path:
        """The host side standing in for a container path (a bind mount)."""
        return Path(self.tr(container_path))

    # --- configuration ------------------------------------------------------------------

    def _test_values(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        sandbox = f"https://localhost:{self.ports.sandbox}"
        return {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "DJANGO_CSRF_TRUSTED_ORIGINS": "https://gascap.example.org",
            "GASCAP_NOTIFY_TOKEN": self.token,
            "GASCAP_FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "GASCAP_PGE_API_BASE": f"{sandbox}/GreenButtonConnect/espi/1_1/resource/",
            "GASCAP_PGE_TOKEN_URL": f"{sandbox}/datacustodian/oauth/v2/token",
            "GASCAP_PGE_AUTHORIZE_URL": f"{sandbox}/myAuthorization",
            "GASCAP_PGE_CA_BUNDLE": "/run/secrets/pge/ca.pem",
            "GASCAP_PGE_CLIENT_ID": "sandbox-client",
            "GASCAP_PGE_CLIENT_SECRET": "sandbox-secret",
            "GASCAP_PGE_THIRD_PARTY_ID": "50098",
            # A month of history keeps the first fetch small.
            "GASCAP_INGEST_INITIAL_HISTORY_DAYS": "30",
        }

    def _env_file(self) -> dict[str, str]:
        """`.env.example` as the operator fills it (every filled variable must exist there)."""
        values = parse_env_file((self.root / ".env.example").read_text())
        filled = self._test_values()
        unknown = sorted(set(filled) - set(values))
        if unknown:
            raise AssertionError(f".env.example does not have {unknown}")
        return {**values, **filled}

    def base_env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        env = {k: os.environ[k] for k in ("HOME", "LANG", "TMPDIR") if k in os.environ}
        env["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
        env["HOSTNAME"] = socket.gethostname()
        return env

    def service_env(self, name: str) -> dict[str, str]:
        service = self.services[name]
        env = self.base_env()
        env.update(dockerfile_env((self.app / "Dockerfile").read_text()))
        if service.get("env_file") == ".env":
            env.update(self.env_file)
        env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
        return {k: self.tr(v) for k, v in env.items()}

    def command(self, name: str) -> list[str]:
        argv = [self.tr(str(a)) for a in self.services[name]["command"]]
        if argv[0] == "nginx":
            conf = self.mount("/etc/nginx/nginx.conf")
            daemon = argv[argv.index("-g") + 1]
            rest = [a for a in argv[1:] if a not in ("-g", daemon)]
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            pid = f"pid {self.work / 'nginx.pid'}; {daemon}"
            argv = [nginx, "-c", str(conf), "-e", "stderr", "-g", pid, *rest]
        return argv

    def healthcheck(self, name: str) -> list[str]:
        test = self.services[name]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            argv = shlex.split(self.tr(test[1]))
            if argv[0] not in ("pg_isready", "redis-cli"):
                return ["sh", "-c", self.tr(test[1])]
        else:
            argv = [self.tr(str(a)) for a in test[1:]]
        if argv[0] == "pg_isready":  # CI's PostgreSQL stands in for the postgres service
            parts = self.server_url.split("@")[-1].split(":")
            argv[0] = shutil.which("pg_isready") or _postgres_bin("pg_isready")
            argv += ["-h", parts[0], "-p", parts[1]]
        if argv[0] == "redis-cli":
            netloc = self.redis_url.split("//")[1].split("/")[0]
            host, _, port = netloc.rpartition("@")[2].partition(":")
            argv[1:1] = ["-h", host, "-p", port or "6379"]
        return argv

    # --- processes ----------------------------------------------------------------------

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        log = self.work / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = (proc, log)

    def start_service(self, name: str) -> None:
        self.start(name, self.command(name), self.service_env(name), self.app)

    def long_running(self) -> list[str]:
        """The services to start: gascap's (proxy last, as its depends_on wants)."""
        ours = [
            name
            for name, service in self.services.items()
            if service.get("env_file") == ".env" and service.get("restart") != "no"
        ]
        return [*ours, "proxy"]

    def terminate(self, name: str) -> None:
        """`docker compose stop`: SIGTERM, then wait for the process to finish its work."""
        proc, _ = self.procs[name]
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=40)

    def run(self, name: str, argv: list[str], *, timeout: float = 120) -> None:
        """Run to completion (compose `run --rm`); raise with the output on failure."""
        result = subprocess.run(
            argv,
            cwd=self.app,
            env=self.service_env(name),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(f"{name}: {argv} exited {result.returncode}: {result.stderr}")

    def log(self, name: str) -> str:
        return self.procs[name][1].read_text(errors="replace")

    def alive(self, name: str) -> None:
        proc, _ = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited {proc.returncode}: {self.log(name)[-2000:]}")

    def health(self, name: str) -> subprocess.CompletedProcess[str]:
        check = self.services[name]["healthcheck"]
        env = self.service_env(name) if "env_file" in self.services[name] else self.base_env()
        return subprocess.run(
            self.healthcheck(name),
            cwd=self.app,
            env=env,
            capture_output=True,
            text=True,
            timeout=_seconds(check.get("timeout", "30s")) + 30,
        )

    def wait_healthy(self, name: str, *, timeout: float = 90) -> float:
        """Run the service's health check until it exits 0; the seconds that took."""
        started = time.monotonic()
        last = None
        while time.monotonic() - started < timeout:
            if name in self.procs:
                self.alive(name)
            last = self.health(name)
            if last.returncode == 0:
                return time.monotonic() - started
            time.sleep(1)
        output = (last.stdout + last.stderr)[-1500:] if last else ""
        raise AssertionError(f"{name}: health check never exited 0: {output}")

    def stop(self) -> None:
        for proc, _ in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc, _ in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.relay is not None:
            self.relay.shutdown()
            self.relay.server_close()

    def show_logs(self) -> None:
        for name, (_proc, log) in self.procs.items():
            text = log.read_text(errors="replace") if log.exists() else ""
            print(f"----- {name} log (last 3000 characters) -----\n{text[-3000:]}")

    # --- services: database, broker, TLS, the sandbox, the notification relay ------------

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    def drop(self) -> None:
        if not self.db_created:
            return
        import psycopg
        import redis

        with psycopg.connect(f"{self.server_url}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        redis.Redis.from_url(self.redis_url).flushdb()

    def build(self) -> list[str]:
        """The build context (no secret path, everything needed), unpacked as /app."""
        operator = operator_layout(self.root, self.work / "operator")
        members = build_context(operator, self.work / "context.tar")
        problems = context_problems(members)
        if problems:
            raise AssertionError("; ".join(problems))
        extract(self.work / "context.tar", self.app)
        shutil.rmtree(operator)
        return members

    def collectstatic(self) -> None:
        """The Dockerfile's collectstatic step (its placeholders, in the context copy)."""
        dockerfile = (self.app / "Dockerfile").read_text().replace("\\\n", " ")
        lines = dockerfile.splitlines()
        step = next(line for line in lines if line.startswith("RUN ") and "collectstatic" in line)
        command = step.strip()[len("RUN ") :].split("&&")[0]
        command = command.replace("/tmp/build.db", str(self.work / "build.db"))
        env = {**self.base_env(), **dockerfile_env((self.app / "Dockerfile").read_text())}
        result = subprocess.run(
            ["sh", "-c", command], cwd=self.app, env=env, capture_output=True, text=True, timeout=99
        )
        if result.returncode != 0:
            raise AssertionError(f"collectstatic: {result.stderr[-2000:]}")

    def tls(self) -> None:
        """The operator's certificate for the proxy (./secrets/tls), from a test CA."""
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert(self.host, "localhost", LOOPBACK)
        tls_dir = self.mount("/etc/nginx/tls")
        tls_dir.mkdir(parents=True, exist_ok=True)
        cert.private_key_pem.write_to_path(str(tls_dir / "privkey.pem"))
        with (tls_dir / "fullchain.pem").open("wb") as fh:
            for blob in cert.cert_chain_pems:
                fh.write(blob.bytes())
        ca.cert_pem.write_to_path(str(self.edge_ca))
        conf = self.mount("/etc/nginx/nginx.conf")
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(self.tr((self.root / "deploy" / "nginx.conf").read_text()))

    def start_sandbox(self) -> None:
        """PG&E: the sandbox from the repository (never in the image), its client certificate
        copied where the operator puts PG&E's (./secrets/pge)."""
        env = self.base_env()
        env.update(
            DJANGO_SETTINGS_MODULE="gascap.settings.local",
            GASCAP_VAR_DIR=str(self.work / "sandbox"),
            GASCAP_SANDBOX_PORT=str(self.ports.sandbox),
            GASCAP_PGE_REDIRECT_URI=self.env_file["GASCAP_PGE_REDIRECT_URI"],
            GASCAP_SANDBOX_NOTIFY_DELAY="1",
            PYTHONUNBUFFERED="1",
        )
        notify = f"http://{LOOPBACK}:{self.ports.relay}/pge/notify/{self.token}/"
        argv = [sys.executable, "manage.py", "run_sandbox", "--port", str(self.ports.sandbox)]
        self.start("sandbox", [*argv, "--fresh", "--notify-url", notify], env, self.root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.alive("sandbox")
            try:
                socket.create_connection((LOOPBACK, self.ports.sandbox), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("the sandbox did not listen within 60 s")
        certs = self.sandbox_ca.parent
        pge = self.mount("/run/secrets/pge")
        pge.mkdir(parents=True, exist_ok=True)
        shutil.copy(certs / "ca.pem", self.tr(self.env_file["GASCAP_PGE_CA_BUNDLE"]))
        shutil.copy(certs / "client.pem", self.tr(self.env_file["GASCAP_PGE_CLIENT_CERT"]))
        shutil.copy(certs / "client.key", self.tr(self.env_file["GASCAP_PGE_CLIENT_KEY"]))

    def start_relay(self) -> None:
        """The internet between PG&E and the proxy: the sandbox POSTs its BatchList here over
        plain HTTP (its client trusts only the public CAs), and this sends it on to the proxy
        over TLS with the public host name, as PG&E reaches https://<host>/pge/notify/..."""
        deployment = self

        class Relay(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = deployment.edge_session().post(
                    deployment.edge(self.path),
                    data=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    timeout=20,
                )
                deployment.relayed.append(answer.status_code)
                self.send_response(answer.status_code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.relay = http.server.ThreadingHTTPServer((LOOPBACK, self.ports.relay), Relay)
        threading.Thread(target=self.relay.serve_forever, daemon=True).start()

    # --- clients ------------------------------------------------------------------------

    def edge(self, path: str) -> str:
        return f"https://{LOOPBACK}:{self.ports.https}{path}"

    def edge_session(self) -> requests.Session:
        """A client on the internet: TLS to the proxy, the public host name in Host."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.edge_ca)
        session.headers["Host"] = self.host
        return session


def _seconds(value: str | int) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("s") else float(text)


def _postgres_bin(name: str) -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return name
