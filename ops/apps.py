from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import request_finished


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery signal receivers: the task id, the ids a task works on and the request id of
        # the web request that queued it go into every log line the task writes.
        from ops import log_context

        log_context.celery_signals_connect()
        request_finished.connect(
            log_context.request_context_clear, weak=False, dispatch_uid="ops.request_clear"
        )
