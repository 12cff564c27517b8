"""docs/reliability.md tests 28/53: no secret in broker messages or worker logs.

An end-to-end run through Redis (web -> broker -> worker -> sandbox over mTLS, including a
forced token refresh, so the refresh token and client secret are used) is recorded with
Redis MONITOR, which sees every command and its arguments, message bodies included. Neither
the raw commands, the kombu bodies (base64-decoded) nor the web/worker logs may contain an
access token, refresh token, client secret or `Authorization: Bearer` value; every task
argument is an integer id.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator

import pytest

from customers.models import Authorization
from ingest.models import Fetch, Notification
from tests.reliability.conftest import (
    CLIENT_SECRET,
    NOTIFY_TOKEN,
    REL_REDIS_DB,
    batchlist,
    http,
    redis_url,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class Monitor:
    """Redis MONITOR in a thread: every command sent to our database, as text.

    The monitor connection has no read timeout: redis-py drops a connection whose read timed
    out, and the reconnected socket is no longer in MONITOR mode, so a quiet moment (5 s, the
    default timeout, is a lull a loaded machine produces) left the monitor deaf for the rest of
    the test and the test saw no message at all. It blocks on the next command instead,
    and `__exit__` wakes it with PINGs from another connection (MONITOR sees them too)."""

    def __init__(self) -> None:
        import redis

        # redis-py 8 reads with a 5 s timeout by default: none here (see the docstring).
        self.client = redis.Redis.from_url(redis_url(), socket_timeout=None)
        self.commands: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self.client.monitor() as monitor:
                self._ready.set()
                while not self._stop.is_set():
                    event = monitor.next_command()
                    if str(event.get("db")) == str(REL_REDIS_DB):
                        self.commands.append(event["command"])
        except BaseException as exc:  # reported by __enter__ / __exit__, never swallowed
            self.error = exc
            self._ready.set()

    def __enter__(self) -> Monitor:
        self._thread.start()
        assert self._ready.wait(5), "Redis MONITOR did not start"
        assert self.error is None, f"Redis MONITOR failed: {self.error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        import redis

        self._stop.set()
        waker = redis.Redis.from_url(redis_url())
        for _ in range(50):
            if not self._thread.is_alive():
                break
            waker.ping()
            self._thread.join(timeout=0.1)
        waker.close()
        self.client.close()
        assert self.error is None, f"Redis MONITOR failed during the test: {self.error!r}"


def _kombu_messages(commands: list[str]) -> Iterator[dict]:
    """Every kombu message pushed in `commands`: the envelope with its body decoded."""
    for command in commands:
        start = command.find("{")
        if not command.upper().startswith(("LPUSH", "RPUSH", "HSET")) or start < 0:
            continue
        try:
            envelope = json.loads(command[start:].rsplit("}", 1)[0] + "}")
        except ValueError:
            continue
        if "body" not in envelope:
            continue
        raw = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            raw = base64.b64decode(raw).decode()
        envelope["decoded_body"] = json.loads(raw)
        yield envelope


@pytest.mark.timeout(60)
def test_no_secret_in_broker_messages_or_logs(stack, redis_db, procs):
    from sandbox.faults import Fault

    env = dict(stack.env)
    with Monitor() as monitor:
        web = procs.web(env)
        procs.worker(env)
        # PG&E answers 403 once: the worker refreshes (refresh token + client secret), retries.
        stack.sandbox.state.fault_add(
            Fault(kind="expired_token", subscription_id=stack.sid, times=1)
        )
        answer = http().post(
            f"{web}/pge/notify/{NOTIFY_TOKEN}/",
            data=batchlist(stack.subscription_url(days_back=3)),
            timeout=10,
        )
        assert answer.status_code == 200
        wait_for(
            lambda: Fetch.objects.filter(status=Fetch.Status.INGESTED).exists(),
            timeout=30,
            what="the fetch to be ingested",
        )

    auth = Authorization.objects.get(subscription_id=stack.sid)
    secrets = {
        "first access token": stack.access_token,
        "first refresh token": stack.refresh_token,
        "refreshed access token": auth.access_token,
        "refreshed refresh token": auth.refresh_token,
        "client secret": CLIENT_SECRET,
    }
    assert secrets["refreshed access token"] != stack.access_token  # the refresh did happen
    assert all(secrets.values())

    messages = list(_kombu_messages(monitor.commands))
    tasks = {m["headers"]["task"] for m in messages}
    assert {"ingest.notification_process", "ingest.fetch_run"} <= tasks, tasks
    for message in messages:
        args, kwargs, _ = message["decoded_body"]
        assert kwargs == {}
        assert all(type(arg) is int for arg in args), (message["headers"]["task"], args)

    haystacks = {
        "redis commands": "\n".join(monitor.commands),
        "decoded message bodies": json.dumps([m["decoded_body"] for m in messages]),
        "message headers": json.dumps([m["headers"] for m in messages]),
        "worker log": procs.log("worker-rel.log"),
        "web log": procs.log("web.log"),
    }
    assert "ingest.fetch_run" in haystacks["worker log"]  # the log is the one we think
    for where, text in haystacks.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in {where}"
        assert "Bearer " not in text, f"an Authorization: Bearer value in {where}"
        assert NOTIFY_TOKEN not in text, f"the webhook path token in {where}"
    assert Notification.objects.filter(status=Notification.Status.PROCESSED).count() == 1
