"""The production smoke's checks, in order (deploy/smoke.py says what each shows)."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from deploy.smoke_env import LOOPBACK, Deployment

SPOOFED = "203.0.113.66"  # TEST-NET-3: documentation addresses only


def batchlist(marker: str) -> bytes:
    """A BatchList whose one resource is outside PG&E's API base: stored and answered 200,
    then refused by the worker without anything sent to it."""
    return (
        '<?xml version="1.0"?><BatchList xmlns="http://naesb.org/espi">'
        f"<resources>https://refused.invalid/smoke/{marker}</resources></BatchList>"
    ).encode()


def wait_for(what: str, condition: Callable[[], Any], *, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def django_shell(d: Deployment) -> None:
    """This process as the operator's `manage.py shell`: production settings, the same env."""
    os.environ.update(d.service_env("web"))
    os.environ["GASCAP_VAR_DIR"] = str(d.work / "shell-var")
    import django

    django.setup()


def run_checks(d: Deployment, r: Any) -> None:
    members = r.check("the build context holds no secret path", d.build)
    if members is None:
        raise AssertionError("no build context to run")
    print(f"     {len(members)} files in the build context")
    d.collectstatic()
    d.create_database()
    d.tls()
    d.start_relay()
    d.start_sandbox()
    django_shell(d)
    r.check("migrate leaves every schedule in place", check_migrate, d)
    make_sweep_due()
    for name in d.long_running():
        d.start_service(name)
    r.check("every health check command exits 0", check_health, d)
    r.check("beat dispatches a schedule that a worker runs", check_beat, d)
    r.check("host validation still refuses unknown hosts", check_hosts, d)
    r.check(
        "a notification sent through the proxy is stored and fetched from the sandbox",
        check_notification,
        d,
    )
    r.check("/admin/ is 404 and the operators' path wants a one-time code", check_admin, d)
    r.check("a spoofed X-Forwarded-For does not reach Django as the client", check_spoof, d)
    r.check("a body over 256 KiB stops at the proxy", check_body_cap, d)
    r.check("3 slowloris connections through the proxy: webhook < 1 s", check_slowloris, d)
    r.check("control: the same 3 connections straight to gunicorn block it", check_control, d)
    r.check("upgrade order: web, then web2, restarted; the webhook never fails", check_upgrade, d)
    r.check("no log holds the webhook token or an OAuth code", check_logs, d)


def check_migrate(d: Deployment) -> str:
    from django_celery_beat.models import PeriodicTask

    from gascap.beat import schedules_missing
    from gascap.schedules import SCHEDULES

    d.run("migrate", d.command("migrate"), timeout=300)
    assert schedules_missing() == [], schedules_missing()
    names = [spec.name for spec in SCHEDULES]
    # An upgrade: one schedule deleted in the admin, one disabled by the operator.
    PeriodicTask.objects.filter(name=names[0]).delete()
    PeriodicTask.objects.filter(name=names[1]).update(enabled=False)
    d.run("migrate", d.command("migrate"), timeout=300)
    assert schedules_missing() == [], schedules_missing()
    assert PeriodicTask.objects.get(name=names[1]).enabled is False
    PeriodicTask.objects.filter(name=names[1]).update(enabled=True)
    return f"{len(names)} schedules; a deleted one restored, a disabled one left disabled"


def make_sweep_due() -> None:
    """The sweep runs every 120 s: mark its last run an hour ago so beat sends it at start."""
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name="ingest: sweep stuck work").update(
        last_run_at=timezone.now() - timedelta(hours=1)
    )


def check_health(d: Deployment) -> str:
    took = {}
    for name, service in d.services.items():
        if "healthcheck" in service:
            took[name] = d.wait_healthy(name)
    return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items())


def check_beat(d: Deployment) -> str:
    from django_celery_beat.models import PeriodicTask

    pattern = re.compile(r"Task ingest\.sweep_stuck\[[0-9a-f-]+\] succeeded")

    def ran() -> bool:
        d.alive("worker")
        d.alive("beat")
        return bool(pattern.search(d.log("worker")))

    wait_for("the worker to run the sweep beat sent", ran, timeout=60)
    task = PeriodicTask.objects.get(name="ingest: sweep stuck work")
    assert task.total_run_count >= 1 and task.last_run_at is not None
    assert "Sending due task ingest: sweep stuck work" in d.log("beat")
    return f"sweep sent by beat {task.total_run_count}x, run by the worker"


def check_hosts(d: Deployment) -> str:
    session = d.edge_session()
    assert session.get(d.edge("/healthz"), timeout=10).status_code == 200
    evil = session.get(d.edge("/healthz"), headers={"Host": "evil.example"}, timeout=10)
    assert evil.status_code == 400, evil.status_code
    direct = requests.get(
        f"http://{LOOPBACK}:{d.gunicorn['web']}/healthz", headers={"Host": LOOPBACK}, timeout=10
    )
    assert direct.status_code == 400, direct.status_code
    return f"{d.host} 200; evil.example and {LOOPBACK} 400"


def check_notification(d: Deployment) -> str:
    from customers.models import Authorization
    from ingest.models import Fetch, IntervalReading, Notification
    from sandbox.drive import consent_decide

    browser = d.edge_session()
    start = browser.get(d.edge("/consent/start/"), allow_redirects=False, timeout=20)
    assert start.status_code == 302, (start.status_code, start.text[:300])
    callback = consent_decide(
        authorize_url=start.headers["Location"], customer="electric", ca_bundle=str(d.sandbox_ca)
    )
    parts = urlsplit(callback)
    assert parts.netloc == d.host, callback
    landed = browser.get(d.edge(f"{parts.path}?{parts.query}"), allow_redirects=False, timeout=60)
    assert landed.status_code == 303, (landed.status_code, landed.text[:500])
    assert Authorization.objects.filter(status=Authorization.Status.ACTIVE).count() == 1

    def fetched() -> bool:
        d.alive("worker")
        notifications = list(Notification.objects.values_list("status", flat=True))
        if not notifications or {"RECEIVED", "PROCESSING"} & set(notifications):
            return False
        fetches = list(Fetch.objects.values_list("status", flat=True))
        return bool(fetches) and not set(Fetch.OPEN_STATUSES) & set(fetches)

    wait_for("the notification's fetches to finish", fetched, timeout=120)
    assert d.relayed and set(d.relayed) == {200}, d.relayed
    notification = Notification.objects.order_by("received_at").first()
    assert notification.status == Notification.Status.PROCESSED, notification.status
    statuses = list(Fetch.objects.values_list("status", flat=True))
    assert set(statuses) == {Fetch.Status.INGESTED}, statuses
    readings = IntervalReading.objects.count()
    assert readings > 0
    assert notification.headers.get("HTTP_X_FORWARDED_PROTO") == "https", notification.headers
    return f"{len(statuses)} fetches INGESTED, {readings} readings stored"


def check_admin(d: Deployment) -> str:
    from django.conf import settings

    session = d.edge_session()
    admin = "/" + settings.GASCAP_ADMIN_PATH
    assert admin != "/admin/"
    assert session.get(d.edge("/admin/"), timeout=10).status_code == 404
    assert session.get(d.edge("/admin/login/"), timeout=10).status_code == 404
    index = session.get(d.edge(admin), allow_redirects=False, timeout=10)
    assert index.status_code == 302 and index.headers["Location"].startswith(f"{admin}login/")
    login = session.get(d.edge(f"{admin}login/"), timeout=10)
    assert login.status_code == 200 and 'name="otp_token"' in login.text
    return f"{admin}login/ asks for otp_token"


def check_spoof(d: Deployment) -> str:
    from axes.models import AccessAttempt
    from django.conf import settings

    from ingest.models import Notification

    spoof = {
        "X-Forwarded-For": SPOOFED,
        "X-Real-IP": SPOOFED,
        "Forwarded": f"for={SPOOFED};proto=http",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
    }
    # The lockout's client address (django-axes, GASCAP_ADMIN_PROXY_COUNT=1).
    session = d.edge_session()
    login_url = f"/{settings.GASCAP_ADMIN_PATH}login/"
    page = session.get(d.edge(login_url), timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        d.edge(login_url),
        data={
            "csrfmiddlewaretoken": csrf,
            "username": "smoke-spoofer",
            "password": "wrong-password",
            "otp_token": "123456",
        },
        headers={**spoof, "Referer": f"https://{d.host}{login_url}", "Origin": f"https://{d.host}"},
        timeout=20,
    )
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    attempt = AccessAttempt.objects.get(username="smoke-spoofer")
    assert attempt.ip_address == LOOPBACK, attempt.ip_address
    # The webhook's stored request: the proxy's values, none of the client's.
    before = Notification.objects.count()
    posted = session.post(
        d.edge(f"/pge/notify/{d.token}/"),
        data=batchlist("spoof"),
        headers={**spoof, "Content-Type": "application/xml"},
        timeout=10,
    )
    assert posted.status_code == 200, posted.status_code
    assert Notification.objects.count() == before + 1
    stored = Notification.objects.order_by("-id").first()
    assert SPOOFED not in json.dumps(stored.headers) and "evil.example" not in json.dumps(
        stored.headers
    ), stored.headers
    assert stored.headers.get("HTTP_X_FORWARDED_FOR") == LOOPBACK, stored.headers
    assert stored.headers.get("HTTP_X_FORWARDED_PROTO") == "https", stored.headers
    return f"lockout address {attempt.ip_address}; stored X-Forwarded-For {LOOPBACK}"


def check_body_cap(d: Deployment) -> str:
    from ingest.models import Notification

    before = Notification.objects.count()
    answer = d.edge_session().post(
        d.edge(f"/pge/notify/{d.token}/"),
        data=b"<BatchList>" + b" " * (300 * 1024),
        headers={"Content-Type": "application/xml"},
        timeout=10,
    )
    assert answer.status_code == 413, answer.status_code
    assert answer.headers.get("Server", "").startswith("nginx"), answer.headers
    assert Notification.objects.count() == before
    return "300 KiB: 413 from nginx, nothing stored"


def _slow_connections(port: int, *, tls_ca: str | None, host: str, token: str) -> list[Any]:
    """Three requests that never finish: one stuck in its headers, two in their bodies."""
    partial_headers = f"POST /pge/notify/{token}/ HTTP/1.1\r\nHost: {host}\r\nX-Slow: "
    # X-Forwarded-Proto: straight to gunicorn, Django would otherwise redirect to https at once
    # without reading the body (through the proxy, the proxy sets it anyway).
    partial_body = (
        f"POST /pge/notify/{token}/ HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Proto: https\r\n"
        "Content-Type: application/xml\r\nContent-Length: 100000\r\n\r\n<BatchList"
    )
    sockets = []
    for request in (partial_headers, partial_body, partial_body):
        sock: Any = socket.create_connection((LOOPBACK, port), timeout=10)
        if tls_ca:
            context = ssl.create_default_context(cafile=tls_ca)
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.sendall(request.encode())
        sockets.append(sock)
    return sockets


def _post_notification(session: requests.Session, url: str, n: int) -> float:
    started = time.monotonic()
    body = batchlist(f"slowloris-{n}")
    answer = session.post(url, data=body, headers={"Content-Type": "application/xml"}, timeout=10)
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.status_code
    return elapsed


def _under_slowloris(d: Deployment, session: requests.Session, url: str) -> list[float]:
    slow = _slow_connections(d.ports.https, tls_ca=str(d.edge_ca), host=d.host, token=d.token)
    try:
        times = [_post_notification(session, url, n) for n in range(5)]
        for sock in slow:  # still held open by the proxy, not answered
            sock.sendall(b"x")
    finally:
        for sock in slow:
            sock.close()
    return times


def check_slowloris(d: Deployment) -> str:
    session = d.edge_session()
    url = d.edge(f"/pge/notify/{d.token}/")
    floor = [_post_notification(session, url, n) for n in range(5)]  # the same, no attack
    times = _under_slowloris(d, session, url)
    if max(times) >= 1.0:  # once more: on a shared 2-core machine a slow answer may be load
        print(f"     slowest {max(times):.3f} s (floor {max(floor):.3f} s); measuring again")
        times = _under_slowloris(d, session, url)
    assert max(times) < 1.0, times
    return f"5 notifications, slowest {max(times):.3f} s (without the attack {max(floor):.3f} s)"


def check_control(d: Deployment) -> str:
    """Without the proxy the attack works: the webhook check above could have failed."""
    slow = _slow_connections(d.gunicorn["web"], tls_ca=None, host=d.host, token=d.token)
    try:
        try:
            requests.get(
                f"http://{LOOPBACK}:{d.gunicorn['web']}/healthz",
                headers={"Host": d.host},
                timeout=3,
            )
        except requests.exceptions.ReadTimeout:
            blocked = True
        else:
            blocked = False
        assert blocked, "gunicorn answered although its 3 workers held slow requests"
    finally:
        for sock in slow:
            sock.close()
    recovered = wait_for(
        "gunicorn to recover",
        lambda: (
            requests.get(
                f"http://{LOOPBACK}:{d.gunicorn['web']}/healthz",
                headers={"Host": d.host},
                timeout=5,
            ).status_code
            == 200
        ),
        timeout=40,
    )
    assert recovered
    return "no answer within 3 s while they were open; answers again once they closed"


def check_upgrade(d: Deployment) -> str:
    """README "Upgrading": each gunicorn is stopped and started in turn (compose `up -d
    --no-deps web`, then `web2`) while notifications keep arriving through the proxy."""
    statuses: list[int | str] = []
    done = threading.Event()

    def post_notifications() -> None:
        session = d.edge_session()
        url = d.edge(f"/pge/notify/{d.token}/")
        n = 0
        while not done.is_set():
            n += 1
            try:
                answer = session.post(
                    url,
                    data=batchlist(f"upgrade-{n}"),
                    headers={"Content-Type": "application/xml"},
                    timeout=10,
                )
                statuses.append(answer.status_code)
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)
            time.sleep(0.1)

    sender = threading.Thread(target=post_notifications, daemon=True)
    sender.start()
    try:
        for name in d.gunicorn:
            count = len(statuses)
            d.terminate(name)
            wait_for(f"notifications while {name} is down", lambda c=count: len(statuses) > c + 3,
                     timeout=20)  # fmt: skip
            d.start_service(name)
            d.wait_healthy(name)
    finally:
        done.set()
        sender.join(timeout=15)
    failures = [s for s in statuses if s != 200]
    assert not failures, f"{len(failures)} of {len(statuses)} failed: {failures[:10]}"
    return f"{len(statuses)} notifications, all 200, across {len(d.gunicorn)} restarts"


def check_logs(d: Deployment) -> str:
    leaks = []
    for name in d.procs:
        if name == "sandbox":  # PG&E's side: it knows where it posts
            continue
        text = d.log(name)
        if d.token in text:
            leaks.append(f"{name}: the webhook token")
        if re.search(r"[?&]code=", text):
            leaks.append(f"{name}: an OAuth code")
    assert not leaks, leaks
    return f"{len(d.procs) - 1} process logs checked"
