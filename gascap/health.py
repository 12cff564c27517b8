"""`GET /healthz`: can this process reach its database and its broker? It also reports
whether every beat schedule exists.

The status (200/503) depends on the database and the broker only: those decide whether this
process can take a notification. Missing schedules are beat's problem, reported in the body
here and failing beat's own health check (`manage.py beat_health`, gascap/beat.py), so that a
schedule deleted in the admin never takes the webhook out of a load balancer's rotation.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from gascap.celery import app as celery_app

logger = logging.getLogger(__name__)


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.warning("healthz: database unreachable", exc_info=True)
        return False
    return True


def broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:
        logger.warning("healthz: broker unreachable", exc_info=True)
        return False
    return True


def schedules_report() -> str:
    from gascap.beat import schedules_missing

    try:
        missing = schedules_missing()
    except Exception:
        logger.warning("healthz: cannot read the beat schedules", exc_info=True)
        return "unknown"
    return f"missing {len(missing)}" if missing else "ok"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = {
        "database": "ok" if database_ok() else "down",
        "broker": "ok" if broker_ok() else "down",
    }
    healthy = all(value == "ok" for value in report.values())
    report["schedules"] = schedules_report() if report["database"] == "ok" else "unknown"
    return JsonResponse(report, status=200 if healthy else 503)
