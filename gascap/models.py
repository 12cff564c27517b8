"""gascap's own tables: worker liveness (gascap/worker_heartbeat.py), and the runner lease and
outcome fields that every retried row (notification, fetch, data request, and the rows later
work adds) carries."""

from __future__ import annotations

from django.db import models

__all__ = ["RetriedRow", "RunnerLeased", "WorkerHeartbeat"]


class WorkerHeartbeat(models.Model):
    """One process that runs tasks (a prefork child or a solo worker), refreshed every
    GASCAP_WORKER_HEARTBEAT_INTERVAL seconds by a thread of that process. A row not refreshed
    for GASCAP_WORKER_HEARTBEAT_STALE seconds is a dead runner: whatever it held is taken over.
    Times are the database's clock, so the hosts' clocks never have to agree."""

    # "<node name>/<pid>/<random>": readable where it is recorded, never reused by a new
    # process with a recycled pid.
    runner = models.CharField(max_length=100, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return f"{self.hostname} pid {self.pid}"


class RunnerLeased(models.Model):
    """Fields a retried row needs for a safe take-over: who holds it while RUNNING (a
    `WorkerHeartbeat.runner`, empty when claimed outside a worker) and the lease token of that
    claim. Every claim writes a new token; the holder's outcome writes are conditional on it, so
    a run that lost its row to a take-over cannot overwrite the new run's outcome."""

    runner = models.CharField(
        max_length=100, blank=True, help_text="worker process holding the row (node/pid/id)"
    )
    lease = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        abstract = True


class RetriedRow(RunnerLeased):
    """A piece of retried work (docs/reliability.md R5): besides the lease, the outcome fields
    every such row carries, so the sweeper, the admin and an operator read them the same way
    on each (`ingest.models.Notification`, `Fetch`, `DataRequest`). Each model adds its own
    `status` (its own states) and times."""

    # Short machine reason for a refused, failed or poisoned row ("dtd", "malformed", ...).
    reason = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
