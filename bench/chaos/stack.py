"""The process stack of a chaos or soak run: the sandbox (in this process, real mTLS), and as
subprocesses gunicorn (2 workers), two Celery worker processes and beat, against this run's
own PostgreSQL and Redis (`services`). A supervisor thread restarts any of them that exits,
as systemd's Restart=always would, and counts the exits nobody asked for.

The environment is the one the reliability tests give their subprocesses
(tests/reliability/conftest.py), with the periods shortened so a run fits in minutes:
sweeper every 10 s for work older than 15 s, a 40 s task time limit (so a fetch whose worker
was SIGKILLed is re-claimed after its 100 s lease), 60 s broker visibility timeout. Issue 17
(worker heartbeats) shortens the takeover without these knobs; they stay valid with it.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.chaos.services import PG_PORTS, REDIS_PORTS, LocalPostgres, LocalRedis, first_free

NOTIFY_TOKEN = "chaos-notify-path-token-5e2a91"  # noqa: S105 - a throw-away run's
# Distinctive so a leak is unambiguous in the log scan; obviously not real.
CLIENT_ID = "chaos-client-id"
CLIENT_SECRET = "chaos-client-secret-TESTONLY-8c4f1d"  # noqa: S105
BULK_ID = "99999"
CUSTOMERS = ("electric", "gas", "solar")
CHAOS_DB = "gascap_chaos"
GOLDEN_DB = "gascap_golden"
SWEEP_EVERY_SECONDS = 10
RESTART_BACKOFF_SECONDS = 3.0
# Periodic tasks that would fetch data nobody notified about (whole history, gap audit) or
# change consents behind the run's back (the daily poll): off, so the readings table can be
# compared with the golden set of the notified windows. The others (sweeper, token refresh,
# alerts, heartbeats) run as in production.
DISABLED_SCHEDULES = (
    "ingest: daily data request",
    "ingest: gap audit",
    "customers: poll authorizations",
)


def service_env(work: Path, *, database_url: str, redis_url: str, key: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "gascap.settings.test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GASCAP_REQUIRE_SERVICES": "1",
        "GASCAP_VAR_DIR": str(work / "var"),
        "GASCAP_FIELD_ENCRYPTION_KEYS": key,
        "GASCAP_NOTIFY_TOKEN": NOTIFY_TOKEN,
        "GASCAP_PGE_CLIENT_ID": CLIENT_ID,
        "GASCAP_PGE_CLIENT_SECRET": CLIENT_SECRET,
        "GASCAP_PGE_THIRD_PARTY_ID": BULK_ID,
        "GASCAP_PGE_RATE_LIMIT_PER_SECOND": "10",
        "GASCAP_INGEST_BACKOFF_BASE": "0.5",
        "GASCAP_INGEST_BACKOFF_CAP": "5",
        "GASCAP_INGEST_SWEEP_AGE": "15",
        "GASCAP_CELERY_SOFT_TIME_LIMIT": "30",
        "GASCAP_CELERY_TIME_LIMIT": "40",
        "GASCAP_CELERY_VISIBILITY_TIMEOUT": "60",
    }


@dataclass
class Supervised:
    """One long-running subprocess the supervisor keeps alive."""

    name: str
    start: Any  # () -> subprocess.Popen
    proc: Any = None
    expected_exit: bool = False
    unexpected_exits: int = 0
    restarts: int = 0
    last_start: float = 0.0


@dataclass
class ChaosStack:
    work: Path
    pg: LocalPostgres = field(init=False)
    redis: LocalRedis = field(init=False)
    env: dict[str, str] = field(default_factory=dict)
    sandbox: Any = None
    procs: Any = None
    web_url: str = ""
    subscriptions: dict[str, str] = field(default_factory=dict)
    supervised: dict[str, Supervised] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- start -------------------------------------------------------------------------------
    def start(self) -> ChaosStack:
        from cryptography.fernet import Fernet

        self.work.mkdir(parents=True, exist_ok=True)
        self.pg = LocalPostgres(self.work / "pg", first_free(PG_PORTS)).init()
        self.pg.start()
        self.pg.createdb(CHAOS_DB)
        self.pg.createdb(GOLDEN_DB)
        self.redis = LocalRedis(self.work / "redis", first_free(REDIS_PORTS))
        self.redis.start()
        self.env = service_env(
            self.work,
            database_url=self.pg.url(CHAOS_DB),
            redis_url=self.redis.url,
            key=Fernet.generate_key().decode(),
        )
        os.environ.update(self.env)  # this process: migrations, consents, checks
        import django

        django.setup()
        self._prepare_database()
        self._start_sandbox()
        self._start_processes()
        threading.Thread(target=self._supervise, name="supervisor", daemon=True).start()
        return self

    def _prepare_database(self) -> None:
        from django.core.management import call_command
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        call_command("migrate", verbosity=0, interactive=False)
        call_command("ensure_schedules", stdout=io.StringIO())
        every, _ = IntervalSchedule.objects.get_or_create(
            every=SWEEP_EVERY_SECONDS, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.filter(name="ingest: sweep stuck work").update(interval=every)
        PeriodicTask.objects.filter(name__in=DISABLED_SCHEDULES).update(enabled=False)

    def _start_sandbox(self) -> None:
        from django.conf import settings

        from tests.support import sandbox_client_env, sandbox_consent, sandbox_start_quiet

        # The driver delivers BatchLists itself.
        self.sandbox = sandbox_start_quiet(
            self.work / "certs", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, bulk_id=BULK_ID
        )
        self.env.update(sandbox_client_env(self.sandbox))
        settings.GASCAP_FIELD_ENCRYPTION_KEYS = [self.env["GASCAP_FIELD_ENCRYPTION_KEYS"]]
        for key in CUSTOMERS:
            sid, _, _ = sandbox_consent(self.sandbox, customer_key=key, display_name=f"chaos {key}")
            self.subscriptions[key] = sid
        from django.db import connection

        connection.close()  # the faults restart the server: no idle session of ours in it

    def _start_processes(self) -> None:
        from tests.support import Procs, celery_worker_argv, wait_until_worker_ready

        self.procs = Procs(self.work)
        self.web_url = self.procs.web(self.env, workers=2)
        web_proc = self.procs.started[-1]
        self.supervised["web"] = Supervised("web", self._web_restart, web_proc)
        for name in ("worker-a", "worker-b"):
            log = self.work / f"{name}.log"

            def spawn(name: str = name, log: Path = log) -> Any:
                return self.procs._spawn(celery_worker_argv(name=f"chaos-{name}"), self.env, log)

            proc = spawn()
            wait_until_worker_ready(proc, log)
            self.supervised[name] = Supervised(name, spawn, proc)

        def beat() -> Any:
            args = [sys.executable, "-m", "celery", "-A", "gascap", "beat", "-l", "INFO"]
            return self.procs._spawn(args, self.env, self.work / "beat.log")

        self.supervised["beat"] = Supervised("beat", beat, beat())

    def _web_restart(self) -> Any:
        # gunicorn on the same port: the driver keeps its URL.
        port = self.web_url.rsplit(":", 1)[1]
        args = [sys.executable, "-m", "gunicorn", "gascap.wsgi:application", "--bind"]
        args += [f"127.0.0.1:{port}", "--workers", "2", "--timeout", "30"]
        return self.procs._spawn(args, self.env, self.work / "web.log")

    # --- supervision -------------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                for item in self.supervised.values():
                    if item.proc.poll() is None:
                        continue
                    if time.monotonic() - item.last_start < RESTART_BACKOFF_SECONDS:
                        continue  # systemd's RestartSec: no tight restart loop
                    if not item.expected_exit:
                        item.unexpected_exits += 1
                        print(f"  ! {item.name} exited on its own ({item.proc.returncode})")
                    item.expected_exit = False
                    item.proc = item.start()
                    item.restarts += 1
                    item.last_start = time.monotonic()

    def kill9(self, name: str) -> None:
        """SIGKILL one supervised process by its PID; the supervisor restarts it."""
        with self._lock:
            item = self.supervised[name]
            item.expected_exit = True
            item.proc.kill()

    def pids(self) -> dict[str, int]:
        """The supervised processes' PIDs plus the gunicorn workers (children of web)."""
        found = {name: item.proc.pid for name, item in self.supervised.items()}
        children = Path(f"/proc/{found['web']}/task/{found['web']}/children")
        try:
            for index, pid in enumerate(children.read_text().split()):
                found[f"web-{index}"] = int(pid)
        except OSError:
            pass
        return found

    # --- data --------------------------------------------------------------------------------
    def resource_url(self, *, subscription_id: str, day: int) -> str:
        """A Batch/Subscription URL as PG&E's BatchList names it: a fresh correlation over the
        whole Pacific day `day` days ago (same day, same data: the sandbox is deterministic)."""
        from django.utils import timezone

        start = int((timezone.now() - timedelta(days=day)).timestamp())
        start -= start % 86400
        correlation = self.sandbox.state.correlation_create(
            kind="subscription",
            target=subscription_id,
            published_min=start,
            published_max=start + 86400,
        )
        base = f"{self.sandbox.api_base}Batch/Subscription/{subscription_id}"
        return f"{base}?correlationID={correlation}"

    def logs(self) -> list[Path]:
        return sorted(p for p in self.work.rglob("*.log") if p.is_file())

    # --- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self.procs is not None:
                self.procs.stop_all()
        if self.sandbox is not None:
            self.sandbox.stop()
        if getattr(self, "redis", None) is not None:
            self.redis.stop()
        if getattr(self, "pg", None) is not None:
            self.pg.stop()


def wait_for(condition: Any, *, timeout: float, every: float = 1.0) -> bool:
    """Poll `condition` until true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
