"""`make demo`: gascap's whole job end to end on one machine, with no browser.

Starts the sandbox (a local PG&E over mutual TLS), gascap's web server and a Celery worker on
free loopback ports, then for three demo customers (electric, electric with solar, gas):
starts consent at gascap, approves on the sandbox's consent page, follows the redirect back to
gascap's callback. gascap exchanges the code, requests data asynchronously, the sandbox
notifies, the worker fetches, parses and stores. The demo waits for the readings, prints a
table, then reads each customer's daily totals back through the app API (`/api/v1/`, with an
API key and the consent sessions the customers consented through), and exits 0, or non-zero
naming the step that failed. It stops every process it
started, whatever happens.

Embedded default (SQLite, file broker) in a fresh `var/demo/`; PostgreSQL and Redis when
DATABASE_URL / REDIS_URL are set. Run as `python -m gascap.demo` (the environment has to be
set before Django starts, so this is a module, not a management command).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO

import requests

from gascap.celery import worker_argv

ROOT = Path(__file__).resolve().parent.parent
DEMO_CUSTOMERS = ("electric", "solar", "gas")
DEADLINE_SECONDS = 170  # the whole demo must finish within 3 minutes
APP_ORIGIN = "http://localhost:3000"  # the company's app the consent sessions return to
NOTIFY_TOKEN = "demo-notify-token"  # noqa: S105 (a throw-away local path segment, not a secret)


class DemoFailed(RuntimeError):
    """A step of the demo failed; the message names the step."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Processes:
    """The child processes the demo started, each logging to its own file; stopped by PID."""

    log_dir: Path
    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.logs.append(log)
        self.children[name] = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise DemoFailed(
                    f"{name} exited with {child.returncode}; see {self.log_dir / name}.log"
                )

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for log in self.logs:
            log.close()


def wait_until(
    what: str, predicate: Callable[[], bool], timeout: float, processes: Processes
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if predicate():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.3)
    raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what}")


def demo_environment(var_dir: Path, web_port: int, sandbox_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GASCAP_PGE_")}
    env.update(
        DJANGO_SETTINGS_MODULE="gascap.settings.local",
        GASCAP_VAR_DIR=str(var_dir),
        GASCAP_SANDBOX_PORT=str(sandbox_port),
        GASCAP_NOTIFY_TOKEN=NOTIFY_TOKEN,
        GASCAP_PGE_REDIRECT_URI=f"http://localhost:{web_port}/consent/callback/",
        GASCAP_SANDBOX_NOTIFY_URL=f"http://127.0.0.1:{web_port}/pge/notify/{NOTIFY_TOKEN}/",
        # Two months of history keeps the demo within its 3 minutes at PG&E's 1 request/s.
        GASCAP_INGEST_INITIAL_HISTORY_DAYS="60",
        # Where the consent sessions send the browser back (the company's app; not started).
        GASCAP_APP_RETURN_ORIGINS=APP_ORIGIN,
        PYTHONUNBUFFERED="1",
    )
    return env


def consent_session_create(*, web: str, api_key: str, customer: str) -> str:
    """The company's server asks gascap for a consent link for its user `demo-<customer>`."""
    answer = requests.post(
        f"{web}/api/v1/consent-sessions",
        json={"external_id": f"demo-{customer}", "return_url": f"{APP_ORIGIN}/after-consent"},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=20,
    )
    if answer.status_code != 201:
        raise DemoFailed(f"consent session for {customer} answered {answer.status_code}")
    return str(answer.json()["url"])


def consent_through_sandbox(*, start_url: str, customer: str, ca_bundle: str) -> str:
    """One customer's clicks: open the app's link at gascap, approve at PG&E, come back."""
    from sandbox.drive import consent_decide

    with requests.Session() as browser:
        browser.trust_env = False
        start = browser.get(start_url, allow_redirects=False, timeout=20)
        if start.status_code != 302:
            raise DemoFailed(f"consent start for {customer} answered {start.status_code}")
        callback = consent_decide(
            authorize_url=start.headers["Location"], customer=customer, ca_bundle=ca_bundle
        )
        landed = browser.get(callback, allow_redirects=False, timeout=60)
        if landed.status_code != 303:
            raise DemoFailed(
                f"consent callback for {customer} answered {landed.status_code}: "
                f"{landed.text[:300]}"
            )
        return landed.headers["Location"]


@dataclass
class CustomerReport:
    key: str
    subscription_id: str
    usage_points: int
    readings: int
    first: str
    last: str
    totals: dict[str, Decimal]


UNIT_NAMES = {72: "kWh", 169: "therm"}


def customer_report(key: str) -> CustomerReport | None:
    """What gascap stored for one demo customer (None until its consent is recorded)."""
    from django.db.models import Max, Min

    from customers.models import Authorization
    from ingest.models import IntervalReading, MeterReading, UsagePoint
    from sandbox.demo import customer_by_key

    subscription_id = customer_by_key(key).subscription_id
    if not Authorization.objects.filter(subscription_id=subscription_id).exists():
        return None
    usage_points = UsagePoint.objects.filter(authorization__subscription_id=subscription_id)
    series = MeterReading.objects.filter(usage_point__in=usage_points).select_related(
        "reading_type"
    )
    readings = IntervalReading.objects.filter(meter_reading__in=series)
    span = readings.aggregate(first=Min("start"), last=Max("start"))
    totals: dict[str, Decimal] = {}
    for one in series:
        rt = one.reading_type
        if rt is None:
            continue
        raw = sum(readings.filter(meter_reading=one).values_list("value", flat=True))
        scaled = Decimal(raw).scaleb(rt.power_of_ten_multiplier or 0)
        unit = UNIT_NAMES.get(rt.uom or -1, f"uom {rt.uom}")
        if unit == "kWh":
            scaled = scaled / 1000  # the sandbox sends Wh
        direction = {1: "delivered", 19: "received"}.get(rt.flow_direction or 0, "")
        label = f"{unit} {direction}".strip()
        totals[label] = totals.get(label, Decimal(0)) + scaled
    return CustomerReport(
        key=key,
        subscription_id=subscription_id,
        usage_points=usage_points.count(),
        readings=readings.count(),
        first=span["first"].isoformat() if span["first"] else "-",
        last=span["last"].isoformat() if span["last"] else "-",
        totals=totals,
    )


def api_daily_totals(*, web: str, api_key: str, out: IO[str]) -> None:
    """Each demo customer's last week of daily totals, read through the app API."""
    headers = {"Authorization": f"Bearer {api_key}"}

    def get(path: str) -> dict:  # type: ignore[type-arg]
        answer = requests.get(f"{web}/api/v1{path}", headers=headers, timeout=20)
        if answer.status_code != 200:
            raise DemoFailed(
                f"GET /api/v1{path} answered {answer.status_code}: {answer.text[:200]}"
            )
        return answer.json()  # type: ignore[no-any-return]

    out.write("\ndaily totals through the API (GET /api/v1/usage-points/{id}/totals)\n")
    for key in DEMO_CUSTOMERS:
        customer = get(f"/customers/demo-{key}")
        if not customer["usage_points"]:
            raise DemoFailed(f"the API lists no usage point for demo-{key}")
        for point in customer["usage_points"]:
            described = get(f"/usage-points/{point['id']}")
            last = max(
                (s["coverage"]["last"] for s in described["series"] if s["coverage"]["last"]),
                default=None,
            )
            if last is None:
                raise DemoFailed(f"the API shows no readings for demo-{key}")
            end = date.fromisoformat(last[:10]) + timedelta(days=1)
            start = end - timedelta(days=7)
            totals = get(f"/usage-points/{point['id']}/totals?interval=day&start={start}&end={end}")
            for series in totals["series"]:
                days = ", ".join(
                    f"{t['start'][:10]} {Decimal(t['value']).quantize(Decimal('0.001'))}"
                    f"{'' if t['complete'] else '*'}"
                    for t in series["totals"][-4:]
                )
                out.write(f"  demo-{key}/{series['flow']} ({series['unit']}): {days}\n")
    out.write("  (* = the readings do not cover the whole local day)\n")


def work_outstanding() -> int:
    from ingest.models import Fetch, Notification

    open_fetches = Fetch.objects.filter(status__in=["PENDING", "RUNNING", "RETRYING"]).count()
    open_notifications = Notification.objects.filter(status__in=["RECEIVED", "PROCESSING"]).count()
    return open_fetches + open_notifications


def print_table(reports: list[CustomerReport], out: IO[str]) -> None:
    out.write(
        f"\n{'customer':<10}{'usage points':>13}{'readings':>10}  "
        f"{'first interval (UTC)':<26}{'last interval (UTC)':<26}totals\n"
    )
    for r in reports:
        totals = ", ".join(f"{v.quantize(Decimal('0.001'))} {k}" for k, v in r.totals.items())
        out.write(
            f"{r.key:<10}{r.usage_points:>13}{r.readings:>10}  {r.first:<26}{r.last:<26}{totals}\n"
        )


def run_demo(out: IO[str] = sys.stdout) -> int:
    started = time.monotonic()
    var_dir = ROOT / "var" / "demo"
    shutil.rmtree(var_dir, ignore_errors=True)
    (var_dir / "logs").mkdir(parents=True)
    web_port, sandbox_port = free_port(), free_port()
    env = demo_environment(var_dir, web_port, sandbox_port)
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    step = "prepare the database"
    processes = Processes(log_dir=var_dir / "logs", env=env)
    try:
        out.write(
            f"gascap demo: database {settings.DATABASES['default']['ENGINE']}, "
            f"broker {settings.CELERY_BROKER_URL.split(':')[0]}, logs in {var_dir}/logs\n"
        )
        call_command("migrate", verbosity=0, interactive=False)
        call_command("sandbox_certs", verbosity=0)
        step = "start the sandbox, web server and worker"
        python = sys.executable
        processes.start(
            "sandbox", [python, "manage.py", "run_sandbox", "--port", str(sandbox_port), "--fresh"]
        )
        processes.start(
            "web", [python, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"]
        )
        processes.start(
            "worker",
            worker_argv(concurrency=2),
        )
        web = f"http://localhost:{web_port}"
        wait_until(
            "gascap's /healthz",
            lambda: requests.get(f"{web}/healthz", timeout=2).status_code == 200,
            60,
            processes,
        )
        ca_bundle = str(settings.GASCAP_PGE_CA_BUNDLE)
        step = "create an API key"
        from django.utils import timezone

        from api.keys import api_key_create

        _row, api_key = api_key_create(
            name="make demo", scopes=["read", "consent"], now=timezone.now()
        )
        wait_until(
            "the sandbox",
            lambda: (
                socket.create_connection(("127.0.0.1", sandbox_port), timeout=1).close() is None
            ),
            60,
            processes,
        )
        for key in DEMO_CUSTOMERS:
            step = f"consent for the {key} customer"
            link = consent_session_create(web=web, api_key=api_key, customer=key)
            done = consent_through_sandbox(start_url=link, customer=key, ca_bundle=ca_bundle)
            if not done.startswith(f"{APP_ORIGIN}/after-consent?") or "status=active" not in done:
                raise DemoFailed(f"the {key} consent came back to {done}")
            out.write(f"  {key}: consent approved, back at the app: {done}\n")
        step = "receive notifications, fetch and store readings"
        stable: dict[str, int] = {}

        def all_stored() -> bool:
            reports = [customer_report(k) for k in DEMO_CUSTOMERS]
            if any(r is None or r.readings == 0 for r in reports):
                return False
            counts = {r.key: r.readings for r in reports}
            settled = counts == stable and work_outstanding() == 0
            stable.clear()
            stable.update(counts)
            return settled

        remaining = DEADLINE_SECONDS - (time.monotonic() - started)
        wait_until("readings for every demo customer", all_stored, max(remaining, 10), processes)
        print_table([customer_report(k) for k in DEMO_CUSTOMERS], out)
        step = "read daily totals through the API"
        api_daily_totals(web=web, api_key=api_key, out=out)
        out.write(f"\ndemo passed in {time.monotonic() - started:.0f}s\n")
        return 0
    except (DemoFailed, requests.RequestException) as exc:
        out.write(f"\ndemo FAILED at step '{step}': {exc}\n")
        return 1
    finally:
        processes.stop()


if __name__ == "__main__":
    sys.exit(run_demo())
