"""Delivering BatchList notifications to the configured notification URL.

PG&E POSTs the BatchList some time after an asynchronous request (docs/pge-protocol.md
"Notifications"); the sandbox waits `notify_delay` seconds on a timer thread, can deliver
twice (`duplicate_notification`) or before answering the request (`notify_before_202`).
Delivery failures are recorded, never raised: PG&E does not tell the requester either.
"""

from __future__ import annotations

import logging
import threading

import requests

from sandbox.access_xml import batchlist
from sandbox.state import SandboxState, SentNotification

logger = logging.getLogger(__name__)
NOTIFY_TIMEOUT = 10.0


class Notifier:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def send(self, *, url: str, resources: list[str]) -> None:
        """POST one BatchList now, recording the outcome."""
        status: int | None = None
        error: str | None = None
        try:
            # No proxies from the environment: the notification URL is a local webhook.
            with requests.Session() as session:
                session.trust_env = False
                answer = session.post(
                    url,
                    data=batchlist(resources),
                    headers={"Content-Type": "application/xml"},
                    timeout=NOTIFY_TIMEOUT,
                    allow_redirects=False,
                )
            status = answer.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
            logger.warning("sandbox: notification to %s failed: %s", url, error)
        self.state.notification_record(
            SentNotification(url, list(resources), status, error, self.state.clock())
        )

    def schedule(self, *, url: str, resources: list[str], delay: float, copies: int = 1) -> None:
        """Send `copies` identical BatchLists after `delay` seconds, on a timer thread."""

        def fire() -> None:
            try:
                for _ in range(copies):
                    self.send(url=url, resources=resources)
            finally:
                with self._lock:
                    self._timers.discard(timer)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def cancel_all(self) -> None:
        with self._lock:
            timers, self._timers = set(self._timers), set()
        for timer in timers:
            timer.cancel()

    def pending(self) -> int:
        with self._lock:
            return len(self._timers)
