"""Prometheus metrics for `/metrics` (`ops.views.metrics_view`): what each process counts
(here, imported by the apps' one-line hooks, so it imports no app), and what is read from the
database and the broker when Prometheus scrapes (`ops.gauges`).

Decided per metric:

- **Events** that leave no row of their own are counted where they happen, with
  prometheus-client counters in *multiprocess mode* (`PROMETHEUS_MULTIPROC_DIR`, set by the
  settings when metrics are on): every gunicorn worker and Celery process writes its own
  memory-mapped file in that directory and the scrape sums them, so a count is right whichever
  worker served the scrape and however many processes did the work. These are
  `gascap_notifications_received_total{status}` (every answer of the webhook, refused ones
  included: a 404 leaves no row), `gascap_readings_stored_total{change}`,
  `gascap_pge_calls_total{kind,status}` (every HTTP call to PG&E, counted on the requests
  session `gascap.pge_settings.pge_client` builds), `gascap_token_refreshes_total{outcome}`
  and `gascap_webhook_deliveries_total{outcome}`.
- **State** is read from the database at scrape time (the rows are the truth, docs/reliability.md
  R5, and a count kept in a process would drift across restarts): notifications and fetches by
  status, consents by status, the age of the newest reading per commodity (one index lookup per
  series, never a scan of the readings), and alerts not (yet) delivered. Queue depths are read
  from the broker.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter, values


def _process_identifier() -> str:
    """This process's name for its counter file: host name and pid, not the pid alone.

    With docker compose the directory is one volume shared by web, web2, worker and beat, and
    each container has its own pid namespace: by pid alone two containers' processes would
    write the same `counter_<pid>.db` at once. `_` separates the parts of the file name that
    prometheus-client reads back, so it may not appear in the identifier."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:63] or "host"
    return f"{host}-{os.getpid()}"


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before the first metric below is made: each takes its value class at creation.
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)

__all__ = [
    "notification_answer_record",
    "pge_calls_metered",
    "readings_stored_record",
    "token_refresh_record",
    "webhook_delivery_record",
]

NOTIFICATIONS_RECEIVED = Counter(
    "gascap_notifications_received",
    "Answers of the notification webhook, by HTTP status (200 stored, 4xx refused, 503 not stored)",
    ["status"],
)
READINGS_STORED = Counter(
    "gascap_readings_stored", "Interval readings written by ESPI imports", ["change"]
)
PGE_CALLS = Counter(
    "gascap_pge_calls",
    "HTTP calls to PG&E by kind and HTTP status (or the failure without an answer)",
    ["kind", "status"],
)
TOKEN_REFRESHES = Counter(
    "gascap_token_refreshes", "Customer token refreshes by outcome", ["outcome"]
)
WEBHOOK_DELIVERIES = Counter(
    "gascap_webhook_deliveries",
    "Outgoing webhook deliveries to apps by outcome (webhook_delivery_record)",
    ["outcome"],
)


# --- hooks: one line at the place that knows -------------------------------------------------
def notification_answer_record(*, status: int) -> None:
    NOTIFICATIONS_RECEIVED.labels(status=str(status)).inc()


def readings_stored_record(*, new: int, updated: int) -> None:
    if new:
        READINGS_STORED.labels(change="new").inc(new)
    if updated:
        READINGS_STORED.labels(change="updated").inc(updated)


def token_refresh_record(*, failure: BaseException | None) -> None:
    """After a refresh call: None = refreshed; needs re-consent, refused or failed otherwise."""
    if failure is None:
        outcome = "refreshed"
    elif getattr(failure, "reason", None) == "needs_reconsent":
        outcome = "needs_reconsent"
    elif type(failure).__name__ == "PgeAuthError":
        outcome = "refused"
    else:
        outcome = "failed"
    TOKEN_REFRESHES.labels(outcome=outcome).inc()


def webhook_delivery_record(*, outcome: str) -> None:
    """One outgoing app webhook attempt's outcome (`webhooks.delivery`): "delivered",
    "retrying", "failed" (attempts used up), or "poisoned" (claimed too often without an
    outcome)."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


_GRANTS = {
    "authorization_code": "token_code",
    "refresh_token": "token_refresh",
    "client_credentials": "token_client",
}


def pge_call_kind(method: str, url: str, data: Any, token_url: str) -> str:
    """What a call to PG&E is, from its method, URL and form (never its credentials)."""
    path = urlsplit(url).path
    if url.split("?", 1)[0] == token_url.split("?", 1)[0]:
        grant = data.get("grant_type") if isinstance(data, dict) else None
        return _GRANTS.get(str(grant), "token_other")
    if "/ReadServiceStatus" in path:
        return "service_status"
    if "/Authorization" in path:
        return "authorization_delete" if method.upper() == "DELETE" else "authorization_get"
    if "/Batch/Bulk/" in path:
        return "batch_bulk"
    if "/Batch/Subscription/" in path:
        return "batch_subscription"
    if "/ReadingType/" in path:
        return "reading_type"
    return "resource"


def pge_calls_metered(session: Any, *, token_url: str) -> Any:
    """Count every request the session sends, by kind and status ("timeout", "connection",
    "tls" or "error" when no answer came). Returns the same session."""
    import requests

    send: Callable[..., Any] = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kind = pge_call_kind(method, url, kwargs.get("data"), token_url)
        try:
            response = send(method, url, *args, **kwargs)
        except requests.exceptions.SSLError:
            PGE_CALLS.labels(kind=kind, status="tls").inc()
            raise
        except requests.exceptions.Timeout:
            PGE_CALLS.labels(kind=kind, status="timeout").inc()
            raise
        except requests.exceptions.ConnectionError:
            PGE_CALLS.labels(kind=kind, status="connection").inc()
            raise
        except Exception:
            PGE_CALLS.labels(kind=kind, status="error").inc()
            raise
        PGE_CALLS.labels(kind=kind, status=str(response.status_code)).inc()
        return response

    session.request = request
    return session
