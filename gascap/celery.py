"""The one Celery app. Configuration lives in Django settings under the CELERY_ namespace;
this module only adds what reliability needs and the settings module should not repeat:

- the guard that keeps workers up when Redis stops or restarts (gascap/broker_reconnect.py);
- the worker heartbeat: every process that runs tasks (each prefork child, or the solo
  worker) keeps a row in `gascap_workerheartbeat` fresh, and the rows it claims name it, so
  the sweeper can tell a dead runner from a slow one (gascap/worker_heartbeat.py).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

from gascap.broker_reconnect import redis_restore_guard_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gascap.settings.local")

app = Celery("gascap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
redis_restore_guard_install()


@signals.worker_process_init.connect
def _heartbeat_start(sender: Any = None, **kwargs: Any) -> None:
    # Sent in each prefork child after the fork, and by the solo pool in the worker itself:
    # exactly the processes that run tasks. `sender` is the node name (celery@host).
    from gascap.worker_heartbeat import heartbeat_start

    heartbeat_start(hostname=str(sender or "celery"))


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _heartbeat_stop(**kwargs: Any) -> None:
    from gascap.worker_heartbeat import heartbeat_stop

    heartbeat_stop()
