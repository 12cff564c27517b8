"""The asynchronous data requests we make of PG&E (docs/pge-protocol.md, "Data APIs"): one row
per request the daily schedule or a consent makes, retried like a fetch (docs/reliability.md
R5): a status, an attempt counter, the last error, the runner and lease of the run holding it
(`gascap.models.RetriedRow`), so an exhausted request, a budget wait or a lost message is a row
the operator sees and can replay, not a line in a worker log."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from gascap.models import RetriedRow

__all__ = ["DataRequest"]


class DataRequest(RetriedRow):
    """One Batch/Subscription request (a customer token, cut into windows of at most
    GASCAP_INGEST_REQUEST_MAX_DAYS) or one Batch/Bulk request (the client token). PG&E answers
    202 and notifies (REQUESTED); a 200 carrying the data is imported from the answer as a
    fetch row linked here (INGESTED). A retried run resumes after the last window asked."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "pending"
        RUNNING = "RUNNING", "running"
        RETRYING = "RETRYING", "retrying"
        REQUESTED = "REQUESTED", "requested (202: the notification follows)"
        INGESTED = "INGESTED", "answered with the data (200), imported"
        FAILED = "FAILED", "failed"
        POISONED = "POISONED", "poisoned"

    class Kind(models.TextChoices):
        SUBSCRIPTION = "SUBSCRIPTION", "Batch/Subscription (customer token)"
        BULK = "BULK", "Batch/Bulk (client token)"

    class Origin(models.TextChoices):
        CONSENT = "CONSENT", "a new consent (or an operator's request)"
        DAILY = "DAILY", "the daily schedule"

    OPEN_STATUSES = (Status.PENDING, Status.RUNNING, Status.RETRYING)
    REPLAYABLE_STATUSES = (Status.FAILED, Status.POISONED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    authorization = models.ForeignKey(
        "customers.Authorization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="data_requests",
    )
    # The subscription asked for (empty for Bulk): kept when the authorization row goes.
    subscription_id = models.CharField(max_length=64, blank=True, db_index=True)
    # [start, end) asked for; start is decided by the first run (the end of the stored data, or
    # the consent's history) when the row does not say. `requested_until`: the end of the last
    # window PG&E answered, where a retried run resumes.
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField()
    requested_until = models.DateTimeField(null=True, blank=True)
    windows = models.PositiveIntegerField(default=0, help_text="windows PG&E answered")
    # PG&E's status per window answered, in order (202 accepted; 200 the data inline).
    answers = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    runner_task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Replaying asks PG&E again with a customer's token: its own permission, not "view".
        permissions = [("replay_datarequest", "Can replay (re-queue) data requests")]
        constraints = [
            # One open request per subscription (one for Bulk): a consent's request and the
            # daily one, or two daily runs while a budget wait lasts, coalesce.
            models.UniqueConstraint(
                fields=["kind", "subscription_id"],
                condition=Q(status__in=["PENDING", "RUNNING", "RETRYING"]),
                name="ingest_datarequest_one_open",
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="ingest_datareq_status_created")
        ]

    def __str__(self) -> str:
        return f"DataRequest {self.pk} {self.kind} {self.subscription_id or 'bulk'} {self.status}"
