"""Alerts to operators: each condition below is checked by `alerts_check` (the beat task
`ops.alerts_check`, gascap/schedules.py); a firing condition is mailed to `ADMINS` (Django's
mail) and, when `GASCAP_OPS_WEBHOOK_URL` is set, POSTed there signed the Standard Webhooks
way. One alert per condition per PG&E (Pacific) day: the `AlertSent` row keyed by
(condition, day) is written first; an alert whose sending failed stays unsent on its row and
the next check sends it. Every alert says what to do.

Conditions: consents moved to needs re-consent, fetches or notifications failed permanently
or poisoned (each within the last day), no notification for GASCAP_ALERT_SILENCE_HOURS (36),
the PG&E day's calls over GASCAP_ALERT_PGE_DAY_PERCENT (80 %) of the daily cap, and the client
certificate within GASCAP_PGE_CERT_WARN_DAYS (30) of its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction

from ops.models import AlertSent

logger = logging.getLogger(__name__)

__all__ = ["CONDITIONS", "Alert", "alerts_check", "pge_day_calls"]


@dataclass(frozen=True)
class Alert:
    condition: str
    subject: str
    body: str  # what happened, then what to do


def _pge_day(now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.GASCAP_LOCAL_TIME_ZONE)).date()


def _admin_link(path: str) -> str:
    base = settings.GASCAP_OPS_BASE_URL.rstrip("/")
    return f"{base}/{settings.GASCAP_ADMIN_PATH}{path}"


def consents_need_reconsent(*, now: datetime) -> Alert | None:
    from customers.models import Authorization, AuthorizationStatus

    rows = list(
        Authorization.objects.filter(
            status=AuthorizationStatus.NEEDS_RECONSENT, updated_at__gte=now - timedelta(days=1)
        ).select_related("customer")[:50]
    )
    if not rows:
        return None
    lines = "\n".join(
        f"- {a.customer} (subscription {a.subscription_id}): {a.last_error[:200]}" for a in rows
    )
    return Alert(
        "consent_needs_reconsent",
        f"{len(rows)} consent(s) need re-consent",
        f"PG&E refused these consents' tokens; no data is fetched for them:\n{lines}\n\n"
        "What to do: ask each customer to consent again (send them to /consent/start/); "
        "their data resumes after the new consent. List: "
        + _admin_link("customers/authorization/?status__exact=NEEDS_RECONSENT"),
    )


def work_failed_permanently(*, now: datetime) -> Alert | None:
    from ingest.models import DataRequest, Fetch, Notification

    since = now - timedelta(days=1)
    bad = [Fetch.Status.FAILED, Fetch.Status.POISONED]
    fetches = list(Fetch.objects.filter(status__in=bad, created_at__gte=since)[:50])
    notes = list(
        Notification.objects.filter(
            status__in=[Notification.Status.FAILED, Notification.Status.POISONED],
            received_at__gte=since,
        )[:50]
    )
    requests = list(
        DataRequest.objects.filter(
            status__in=DataRequest.REPLAYABLE_STATUSES, created_at__gte=since
        )[:50]
    )
    if not fetches and not notes and not requests:
        return None
    lines = [f"- fetch {f.pk} {f.status} {f.reason}: {f.error[:200]}" for f in fetches]
    lines += [f"- notification {n.pk} {n.status} {n.reason}: {n.error[:200]}" for n in notes]
    lines += [f"- data request {r.pk} {r.status} {r.reason}: {r.error[:200]}" for r in requests]
    summary = f"{len(fetches)} fetch(es), {len(notes)} notification(s)"
    lists = _admin_link("ingest/fetch/?status__in=FAILED,POISONED")
    if requests:
        summary += f", {len(requests)} data request(s)"
        lists += " " + _admin_link("ingest/datarequest/?status__in=FAILED,POISONED")
    return Alert(
        "work_failed",
        f"{summary} failed permanently",
        "These were not retried further:\n" + "\n".join(lines) + "\n\n"
        "What to do: read the error on each row; once its cause is fixed (consent, "
        'certificate, PG&E outage), select the rows and run the admin action "replay" '
        "(or `manage.py ingest_replay --status FAILED`). Lists: " + lists,
    )


def notifications_silent(*, now: datetime) -> Alert | None:
    from customers.models import Authorization, AuthorizationStatus
    from ingest.models import Notification

    hours = int(settings.GASCAP_ALERT_SILENCE_HOURS)
    limit = now - timedelta(hours=hours)
    latest = (
        Notification.objects.exclude(status=Notification.Status.REJECTED)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    if latest is not None and latest >= limit:
        return None
    # Nobody to hear from: no consent old enough to have had data asked for it.
    if not Authorization.objects.filter(
        status=AuthorizationStatus.ACTIVE, created_at__lt=limit
    ).exists():
        return None
    since = latest.isoformat() if latest else "never"
    return Alert(
        "notifications_silent",
        f"No PG&E notification for {hours} hours",
        f"The last notification from PG&E arrived: {since}. PG&E notifies after each daily "
        "data request, so a silent day means requests fail or notifications do not reach us.\n\n"
        "What to do: check the daily data request's result (admin: Periodic tasks, worker "
        "logs), that the webhook answers (`curl -X POST https://<host>/pge/notify/<token>/` "
        "gives 400, not 404/5xx), that the notification URI registered at PG&E is ours, and "
        "PG&E's service status.",
    )


def pge_day_calls(*, now: datetime) -> tuple[int, int]:
    """(calls made this PG&E day, the daily cap), every kind of call, from the PG&E call
    budget's counters (`gascap.pge_budget`; the day resets at 5 p.m. Pacific)."""
    from gascap.pge_budget.budget import budget_usage

    usage = budget_usage(now=now)
    return usage.day_total, usage.caps.per_day


def pge_day_budget(*, now: datetime) -> Alert | None:
    used, cap = pge_day_calls(now=now)
    percent = int(settings.GASCAP_ALERT_PGE_DAY_PERCENT)
    if cap <= 0 or used * 100 < cap * percent:
        return None
    return Alert(
        "pge_day_budget",
        f"PG&E calls today at {used * 100 // cap} % of the daily cap",
        f"{used} of {cap} calls of today's PG&E day are used (alert at {percent} %). Past the "
        "cap PG&E refuses calls until its day ends.\n\n"
        "What to do: `manage.py pge_budget` shows the calls by kind; look for a loop (the same "
        "fetch retried, a replay of many rows) in the fetch attempts; postpone replays and gap "
        "fills to tomorrow (scheduled work already waits past its share); if the load is real, ask "
        "PG&E for a higher limit. Attempts: " + _admin_link("ingest/fetchattempt/"),
    )


def certificate_expiry(*, now: datetime) -> Alert | None:
    """The client certificate's warning (gascap.certificate_expiry, GASCAP_PGE_CERT_WARN_DAYS)."""
    from gascap.certificate_expiry import client_certificate_warning
    from gascap.pge.certificates import certificate_days_left

    warning = client_certificate_warning(now=now)
    if warning is None:
        return None
    left = certificate_days_left(settings.GASCAP_PGE_CLIENT_CERT, now=now)
    subject = (
        "PG&E client certificate has expired"
        if left < 0
        else f"PG&E client certificate expires in {left} day(s)"
    )
    return Alert(
        "certificate_expiry",
        subject,
        f"{warning} After that PG&E answers every call with 400 Invalid Certificate: no "
        "tokens, no data.\n\n"
        "What to do: get a new CA-issued certificate (RSA >= 2048) for the same client, "
        "register it in PG&E's Share My Data portal, then replace GASCAP_PGE_CLIENT_CERT / "
        "_KEY and restart web, worker and beat (`manage.py pge_check` confirms).",
    )


CONDITIONS: tuple[Callable[..., Alert | None], ...] = (
    consents_need_reconsent,
    work_failed_permanently,
    notifications_silent,
    pge_day_budget,
    certificate_expiry,
)


def webhook_signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks `webhook-signature`: v1,base64(HMAC-SHA256(id.timestamp.body)) with
    the secret's bytes (a `whsec_` secret is base64 after the prefix)."""
    key = (
        base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_")
        else secret.encode()
    )
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _webhook_post(alert: AlertSent) -> None:
    url = settings.GASCAP_OPS_WEBHOOK_URL
    body = json.dumps(
        {
            "type": "gascap.alert",
            "condition": alert.condition,
            "day": alert.day.isoformat(),
            "subject": alert.subject,
            "body": alert.body,
        }
    ).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "webhook-id": msg_id}
    headers["webhook-timestamp"] = str(timestamp)
    if settings.GASCAP_OPS_WEBHOOK_SECRET:
        headers["webhook-signature"] = webhook_signature(
            secret=settings.GASCAP_OPS_WEBHOOK_SECRET, msg_id=msg_id, timestamp=timestamp, body=body
        )
    response = requests.post(url, data=body, headers=headers, timeout=10, allow_redirects=False)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"ops webhook answered {response.status_code}")


def _send(row: AlertSent, *, now: datetime) -> None:
    errors: list[str] = []
    if row.mailed_at is None:
        try:
            mail_admins(row.subject, row.body, fail_silently=False)
            row.mailed_at = now
        except Exception as exc:  # SMTP down: kept unsent, retried by the next check
            errors.append(f"mail: {type(exc).__name__}: {exc}"[:300])
    if settings.GASCAP_OPS_WEBHOOK_URL and row.webhook_at is None:
        try:
            _webhook_post(row)
            row.webhook_at = now
        except Exception as exc:
            errors.append(f"webhook: {type(exc).__name__}: {exc}"[:300])
    row.attempts += 1
    row.last_error = "\n".join(errors)
    row.save(update_fields=["mailed_at", "webhook_at", "attempts", "last_error"])
    if errors:
        logger.error("alert %s not fully sent: %s", row.condition, row.last_error)
    else:
        logger.warning("alert sent: %s", row.subject)


def alerts_check(*, now: datetime) -> list[str]:
    """Check every condition; send what fires and was not sent today. Returns the conditions
    sent (or retried) by this run."""
    day = _pge_day(now)
    sent: list[str] = []
    for condition in CONDITIONS:
        try:
            alert = condition(now=now)
        except Exception:
            logger.exception("alert condition %s could not be checked", condition.__name__)
            continue
        if alert is None:
            continue
        try:
            with transaction.atomic():
                row, created = AlertSent.objects.get_or_create(
                    condition=alert.condition,
                    day=day,
                    defaults={"subject": alert.subject, "body": alert.body, "created_at": now},
                )
        except IntegrityError:  # another check created it a moment ago
            continue
        webhook_pending = bool(settings.GASCAP_OPS_WEBHOOK_URL) and row.webhook_at is None
        if created or row.mailed_at is None or webhook_pending:
            _send(row, now=now)
            sent.append(alert.condition)
    return sent
