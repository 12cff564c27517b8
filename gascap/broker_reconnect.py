"""Keep Celery workers up across a Redis stop, restart or kill (issue 17): a small guard on
kombu's Redis transport.

What crashed the worker (reproduced with celery 5.7.0 / kombu 5.7.0 / redis-py 8.1, a real
`redis-server` stopped and started under two prefork workers; see README "Worker failures"):

1. Redis goes away while a task is running (an unacked message) and the consumer is waiting
   in BRPOP. Celery's consumer handles the connection error in
   `Consumer.on_connection_error_after_connected`: it calls `connection.collect()`, whose
   first close of the default channel fails inside `_brpop_read` (Redis is gone) *before*
   the channel is marked closed, and which then detaches the transport
   (`transport.client = None`).
2. Celery 5.7 then also calls `connection.close()` ("close the broken connection so the old
   socket is released"; 5.6 did not). That closes the default channel a second time; this
   time it gets as far as `QoS.restore_unacked_once()`, which builds a Redis client from the
   detached transport: `conninfo.hostname` on `None` -> `AttributeError`. That error is not a
   connection error, so it escapes `ignore_errors` and Celery stops the worker:
   `Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")`,
   exit code 1. It needs an unacked message and a BRPOP in flight at the moment Redis goes:
   one to three times per restart under load, never when idle.

No released kombu or Celery fixes it (5.7.0 is the newest of both; 5.6.x does not make the
second close but lacks the 5.7 reconnect fixes, and pinning back would change every other
developer's environment), and no setting avoids it short of turning off Redis ack emulation
(which would lose the reserved messages at every warm shutdown). So: a guard. When the
channel's transport is already detached, `restore_unacked` logs and leaves the messages where
they are: in Redis's unacked set, which is persisted (AOF) and restored by
`restore_visible` after the visibility timeout. Nothing is lost, and the rows those messages
carried are re-queued much sooner by the sweeper (a RUNNING row whose runner died: within two
sweep periods, gascap/worker_heartbeat.py; a PENDING one: after GASCAP_INGEST_SWEEP_AGE).

Installed once, from gascap/celery.py; idempotent. Remove it when kombu/Celery stop closing a
channel on a detached transport (tests/reliability/test_redis_restart.py tells).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)

_MARK = "_gascap_detached_transport_guard"


def _transport_detached(qos: Any) -> bool:
    channel = getattr(qos, "channel", None)
    transport = getattr(channel, "connection", None)
    return transport is None or getattr(transport, "client", None) is None


def redis_restore_guard_install() -> bool:
    """Wrap kombu's Redis `QoS.restore_unacked` (see the module docstring). Returns whether it
    was installed now (False: already installed, or kombu's Redis transport is unavailable)."""
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - redis is a hard dependency
        return False
    qos_class = kombu_redis.QoS
    original = qos_class.restore_unacked
    if getattr(original, _MARK, False):
        return False

    @functools.wraps(original)
    def restore_unacked(self: Any, client: Any = None) -> Any:
        if client is None and _transport_detached(self):
            delivered = getattr(self, "_delivered", None)
            count = len(delivered) if delivered is not None else 0
            if delivered is not None:
                # As the original does once it has restored them: they are Redis's now.
                delivered.clear()
            logger.warning(
                "broker connection already closed: %s unacknowledged message(s) stay in "
                "Redis's unacked set (restored after the visibility timeout; the sweeper "
                "re-queues their rows sooner)",
                count,
            )
            return None
        return original(self, client)

    setattr(restore_unacked, _MARK, True)
    qos_class.restore_unacked = restore_unacked
    return True
