"""The notification pipeline's records: notifications, fetches and their attempts.

The database, not the broker, is the source of truth (docs/reliability.md R5): every row carries a
status, an attempt counter and the last error (`gascap.models.RetriedRow`), so a lost message, a
killed worker or a broker outage leaves a row the sweeper can find and an operator can replay. A
row being worked on names its runner and lease: a row whose runner stopped beating is taken over
by the sweeper within two sweep periods (gascap/worker_heartbeat.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from gascap.models import RetriedRow

__all__ = ["Fetch", "FetchAttempt", "Notification"]


class Notification(RetriedRow):
    """One POST to the notification webhook, stored before anything else happens to it.

    PG&E's BatchList is unsigned and its content type unreliable (docs/pge-protocol.md,
    Notifications): the body is an untrusted hint, kept verbatim so it can be processed again.
    """

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED", "received"
        PROCESSING = "PROCESSING", "processing"
        PROCESSED = "PROCESSED", "processed"
        DUPLICATE = "DUPLICATE", "duplicate"
        REJECTED = "REJECTED", "rejected"
        FAILED = "FAILED", "failed"
        POISONED = "POISONED", "poisoned"

    # Statuses the sweeper re-queues when they stay too long.
    STUCK_STATUSES = (Status.RECEIVED, Status.PROCESSING)

    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    received_at = models.DateTimeField(db_index=True)
    # The raw body (at most the webhook's cap). Rejected and duplicate deliveries keep only the
    # first 4 KiB: enough to see what it was, not enough to store a flood.
    body = models.BinaryField()
    body_size = models.PositiveIntegerField(default=0)
    body_truncated = models.BooleanField(default=False)
    sha256 = models.CharField(max_length=64, db_index=True)
    headers = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    resource_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "received_at"], name="ingest_notif_status_recv")]
        # Replaying re-runs PG&E fetches with customers' tokens: its own permission, not "view".
        permissions = [("replay_notification", "Can replay (re-queue) notifications")]

    def __str__(self) -> str:
        return f"Notification {self.pk} {self.status}"

    def body_text(self, limit: int = 16384) -> str:
        """The body for display, decoded leniently and cut at `limit` characters."""
        return bytes(self.body or b"")[:limit].decode("utf-8", errors="replace")


class Fetch(RetriedRow):
    """One PG&E resource to download (a URL from a BatchList, a ReadingType a document lacked,
    or a data request PG&E answered with something else than 202), with its outcome. At most
    one open fetch exists per URL: duplicates coalesce."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "pending"
        RUNNING = "RUNNING", "running"
        RETRYING = "RETRYING", "retrying"
        INGESTED = "INGESTED", "ingested"
        SKIPPED = "SKIPPED", "skipped"
        REFUSED = "REFUSED", "refused"
        FAILED = "FAILED", "failed"
        POISONED = "POISONED", "poisoned"

    class Kind(models.TextChoices):
        BULK = "BULK", "Batch/Bulk (client token)"
        SUBSCRIPTION = "SUBSCRIPTION", "Batch/Subscription (customer token)"
        RESOURCE = "RESOURCE", "single resource (customer token)"
        READING_TYPE = "READING_TYPE", "ReadingType (token of the document that named it)"
        AUTHORIZATION = "AUTHORIZATION", "Authorization notice"
        UNKNOWN = "UNKNOWN", "unknown"

    OPEN_STATUSES = (Status.PENDING, Status.RUNNING, Status.RETRYING)
    TERMINAL_STATUSES = (
        Status.INGESTED,
        Status.SKIPPED,
        Status.REFUSED,
        Status.FAILED,
        Status.POISONED,
    )

    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="fetches"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # The data request PG&E answered with this document inline (200) or with an unexpected 2xx.
    data_request = models.ForeignKey(
        "ingest.DataRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="answer_fetches",
    )
    url = models.TextField()
    url_sha256 = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.UNKNOWN)
    # The subscription the URL names (Batch/Subscription/{SID}); empty for Bulk.
    subscription_id = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    # Celery id of the run holding the row: a redelivery of the same message (its worker died)
    # may take the row over; any other message finds it RUNNING and leaves.
    runner_task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    bytes_received = models.BigIntegerField(default=0)
    readings_new = models.PositiveIntegerField(default=0)
    readings_updated = models.PositiveIntegerField(default=0)
    readings_unchanged = models.PositiveIntegerField(default=0)
    # Readings of an older snapshot that arrived after a newer one: kept as stale revisions.
    readings_stale = models.PositiveIntegerField(default=0)
    # Bulk documents: usage points of subscriptions not ACTIVE here, not stored.
    usage_points_skipped = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("replay_fetch", "Can replay (re-queue) fetches")]
        constraints = [
            # Coalescing (docs/reliability.md R2, test 9): one open fetch per URL, even when two
            # notifications naming it are processed at the same moment.
            models.UniqueConstraint(
                fields=["url_sha256"],
                condition=Q(status__in=["PENDING", "RUNNING", "RETRYING"]),
                name="ingest_fetch_one_open_per_url",
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="ingest_fetch_status_created")
        ]

    def __str__(self) -> str:
        return f"Fetch {self.pk} {self.kind} {self.status}"


class FetchAttempt(models.Model):
    """One HTTP call made for a fetch: what came back and how long it took. Never a token."""

    class Outcome(models.TextChoices):
        OK = "OK", "ok"
        TRANSIENT = "TRANSIENT", "transient error"
        AUTH = "AUTH", "authorization error"
        PERMANENT = "PERMANENT", "permanent error"
        CONFIGURATION = "CONFIGURATION", "configuration error"
        REFUSED = "REFUSED", "refused"

    fetch = models.ForeignKey(Fetch, on_delete=models.CASCADE, related_name="attempt_rows")
    url = models.TextField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    bytes_received = models.BigIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.CharField(max_length=64, blank=True)
    error_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"Attempt {self.pk} {self.outcome} {self.status_code or ''}".strip()
