"""Helpers shared by the tests that run real processes (web server, Celery worker, sandbox):
loopback HTTP, free ports, and the service URLs those subprocesses must use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings

from gascap.celery import worker_argv

REPO = Path(__file__).resolve().parents[1]


def loopback_session() -> requests.Session:
    """A requests session for loopback servers: no proxy or CA bundle from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_url_with_db(db: int) -> str:
    """REDIS_URL pointing at Redis database `db` (so a test's worker shares no queue)."""
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def pipeline_settled(fetches=None) -> bool:  # type: ignore[no-untyped-def]
    """The pipeline's work started and ended: at least one notification arrived, none is
    waiting, fetches exist (`fetches`, a queryset, or all of them) and none is open.

    Read in this order, each in one query: a notification's fetch rows commit in the same
    transaction that marks it PROCESSED, so once no notification is waiting, every fetch it
    made is visible. Read the other way round, "no open fetch" can be seen before that commit
    and "no notification waiting" after it: a PENDING fetch taken for settled under load."""
    from ingest.models import Fetch, Notification

    statuses = list(Notification.objects.values_list("status", flat=True))
    waiting = {Notification.Status.RECEIVED, Notification.Status.PROCESSING}
    if not statuses or waiting.intersection(statuses):
        return False
    rows = list((Fetch.objects.all() if fetches is None else fetches).values_list("status"))
    return bool(rows) and not set(Fetch.OPEN_STATUSES).intersection(s for (s,) in rows)


def subprocess_database_url() -> str:
    """The database pytest-django created (its NAME is rewritten at run time), as a URL a
    subprocess can be given."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def sandbox_consent(
    sandbox: object, *, customer_key: str, display_name: str
) -> tuple[str, str, str]:
    """A demo customer's consent as if granted through PG&E: the sandbox grants it and issues
    tokens, gascap stores an ACTIVE authorization holding them. Returns (subscription id,
    access token, refresh token)."""
    from datetime import timedelta

    from django.utils import timezone

    from sandbox.demo import customer_by_key
    from tests.builders import authorization_make, customer_make

    subscription_id = customer_by_key(customer_key).subscription_id
    sandbox.state.authorization_grant(subscription_id=subscription_id)  # type: ignore[attr-defined]
    access, refresh = sandbox.state.tokens_issue(subscription_id=subscription_id)  # type: ignore[attr-defined]
    authorization_make(
        customer=customer_make(display_name=display_name),
        subscription_id=subscription_id,
        access_token=access,
        refresh_token=refresh,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    return subscription_id, access, refresh


def wait_for(condition: Callable[[], object], *, timeout: float, what: str = "") -> None:
    """Poll `condition` every 0.1 s until it is true; AssertionError naming `what` after
    `timeout` seconds (a wait on a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def sandbox_start_quiet(
    directory: Path, *, client_id: str, client_secret: str, bulk_id: str
) -> Any:
    """A started sandbox (a `sandbox.server.SandboxServer`, certificates under `directory`) for a
    stack whose driver delivers the BatchLists itself: the sandbox's own notifications go to a
    closed port."""
    from sandbox.certs import certs_ensure
    from sandbox.config import sandbox_config
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState

    certs, _ = certs_ensure(directory=directory)
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url="http://127.0.0.1:9/unused/",
        notify_delay=0.1,
        redirect_uris=("http://localhost:8000/consent/callback/",),
        client_id=client_id,
        client_secret=client_secret,
        bulk_id=bulk_id,
    )
    return SandboxServer(SandboxState(), config).start()


def sandbox_client_env(sandbox: object) -> dict[str, str]:
    """The GASCAP_PGE_* settings that point a gascap process at a running sandbox: its API base,
    token endpoint and consent page, its CA, and the client certificate it expects (mTLS)."""
    from sandbox.certs import CertPaths

    base_url = sandbox.base_url  # type: ignore[attr-defined]
    certs = CertPaths(sandbox.config.cert_dir)  # type: ignore[attr-defined]
    return {
        "GASCAP_PGE_API_BASE": sandbox.api_base,  # type: ignore[attr-defined]
        "GASCAP_PGE_TOKEN_URL": f"{base_url}/datacustodian/oauth/v2/token",
        "GASCAP_PGE_AUTHORIZE_URL": f"{base_url}/myAuthorization",
        "GASCAP_PGE_CA_BUNDLE": str(certs.ca),
        "GASCAP_PGE_CLIENT_CERT": str(certs.client_cert),
        "GASCAP_PGE_CLIENT_KEY": str(certs.client_key),
    }


def process_stop(proc: subprocess.Popen, *, timeout: float = 20) -> None:
    """Stop a process this test or bench started, by its PID: SIGTERM (a graceful shutdown),
    then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def celery_worker_argv(
    *, name: str, pool: str = "solo", concurrency: int = 1, queues: str | None = None
) -> list[str]:
    """`celery -A gascap worker` as the tests run it (`gascap.celery.worker_argv`): the
    project's queues unless `queues` (comma-separated) says otherwise, no gossip, mingle or
    heartbeat (nothing to talk to), a node name unique to this test process."""
    return worker_argv(
        queues=queues.split(",") if queues else None,
        pool=pool,
        concurrency=concurrency,
        node=f"{name}-{os.getpid()}@localhost",
        heartbeat=False,
    )


def wait_until_worker_ready(proc: subprocess.Popen, log: Path, *, timeout: float = 60) -> None:
    """Block until the worker logging to `log` says it is ready; raise if it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if " ready." in text:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{text[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"worker did not become ready in {timeout:.0f} s")


def batchlist(*urls: str) -> bytes:
    items = "".join(f"<ns0:resources>{u}</ns0:resources>" for u in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<ns0:BatchList xmlns:ns0="http://naesb.org/espi">{items}</ns0:BatchList>'
    ).encode()


@dataclass
class Procs:
    """Subprocesses this test started; each stopped by its own PID."""

    tmp_path: Path
    started: list[subprocess.Popen] = field(default_factory=list)
    groups: list[subprocess.Popen] = field(default_factory=list)

    def _spawn(
        self, args: list[str], env: dict[str, str], log: Path, *, new_session: bool = False
    ) -> subprocess.Popen:
        full_env = {**os.environ, **env}
        full_env.setdefault("DJANGO_SETTINGS_MODULE", "gascap.settings.test")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args,
                cwd=REPO,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: `kill_whole` reaches the main process and its pool.
                start_new_session=new_session,
            )
        if new_session:
            self.groups.append(proc)
        self.started.append(proc)
        return proc

    def web(self, env: dict[str, str], *, workers: int = 1) -> str:
        """gunicorn (as deployed, docker-compose.yml) on a free port; returns its base URL."""
        port = free_port()
        log = self.tmp_path / "web.log"
        proc = self._spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "gascap.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "30",
                "--graceful-timeout",
                "3",
            ],
            env,
            log,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                # The wrong path token answers 404 before any database use.
                loopback_session().get(f"{url}/pge/notify/probe/", timeout=1)
                return url
            except (requests.ConnectionError, requests.Timeout):
                # The socket is bound before the workers have booted: keep asking.
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"web did not start:\n{log.read_text(errors='replace')[-3000:]}")

    def worker(
        self,
        env: dict[str, str],
        *,
        name: str = "rel",
        pool: str = "solo",
        concurrency: int = 1,
        queues: str | None = None,
    ) -> subprocess.Popen:
        log = self.tmp_path / f"worker-{name}.log"
        proc = self._spawn(
            celery_worker_argv(name=name, pool=pool, concurrency=concurrency, queues=queues),
            env,
            log,
            new_session=True,
        )
        wait_until_worker_ready(proc, log)
        return proc

    def worker_pair(self, env: dict[str, str]) -> dict[str, subprocess.Popen]:
        """Two prefork workers of one process each, "alpha" and "beta" (logs
        worker-alpha.log, worker-beta.log): the reliability tests' production-like pair."""
        return {
            name: self.worker(env, name=name, pool="prefork", concurrency=1)
            for name in ("alpha", "beta")
        }

    def kill_whole(self, proc: subprocess.Popen) -> None:
        """SIGKILL a worker's main process and its pool at once (OOM kill, `docker kill`): the
        process group this fixture made for it, nothing else."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.tmp_path / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc in self.groups:
                # Pool processes left behind by a killed main process: the group is ours.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
