"""The one Celery app. Configuration lives in Django settings under the CELERY_ namespace;
this module only adds what reliability needs and the settings module should not repeat:

- the guard that keeps workers up when Redis stops or restarts (gascap/broker_reconnect.py);
- the worker heartbeat: every process that runs tasks (each prefork child, or the solo
  worker) keeps a row in `gascap_workerheartbeat` fresh, and the rows it claims name it, so
  the sweeper can tell a dead runner from a slow one (gascap/worker_heartbeat.py);
- Django's query log emptied when a task starts, as Django does when a request starts, so a
  worker with DEBUG on does not keep every task's SQL (`_queries_log_clear`);
- `worker_argv`, the one spelling of a worker's command line for the code that starts one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from celery import Celery, signals
from django.conf import settings

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


@signals.task_prerun.connect
def _queries_log_clear(task: Any = None, **kwargs: Any) -> None:
    # With DEBUG on (settings.local: `make run`, the tests' and benches' workers) Django keeps
    # every SQL statement run on a connection, text and parameters, in its `queries_log`, up to
    # 9,000 of them; only `request_started` empties it, and a worker never sees a request. A
    # Bulk document's import is ~65 statements, 0.8 MB of text: a worker grew by that much per
    # document (docs/scale.md, "Worker memory"). Emptied here, the log holds one task's
    # queries at most. Not for a task run eagerly, inside the caller's own request or test
    # (whose `assertNumQueries` reads the same log); the fixup of Celery's own Django support
    # makes the same exception when it closes connections.
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import reset_queries

    reset_queries()


def worker_argv(
    *,
    queues: Sequence[str] | None = None,
    pool: str | None = None,
    concurrency: int | None = None,
    node: str | None = None,
    heartbeat: bool = True,
) -> list[str]:
    """`celery -A gascap worker` as this interpreter runs it: the project's queues
    (settings.CELERY_TASK_QUEUES_NAMES) unless told otherwise, without gossip or mingle (a
    worker has nothing to agree with its peers). The tests, the benches and `make demo` start
    workers with it; Procfile.dev and docker-compose.yml cannot call Python and keep one line
    each, which tests/foundation/test_deployment.py checks against the same queues."""
    argv = [sys.executable, "-m", "celery", "-A", "gascap", "worker", "-l", "INFO"]
    argv += ["-Q", ",".join(queues or settings.CELERY_TASK_QUEUES_NAMES)]
    if pool is not None:
        argv += ["-P", pool]
    if concurrency is not None:
        argv += ["-c", str(concurrency)]
    argv += ["--without-gossip", "--without-mingle"]
    if not heartbeat:
        argv.append("--without-heartbeat")
    if node is not None:
        argv += ["-n", node]
    return argv
