"""Outgoing webhooks: endpoints, the event outbox, one delivery per event and endpoint, and
one attempt row per HTTP try (the same shape as ingest's fetches: docs/reliability.md R5).

An event row is written in the transaction that made the change it reports (outbox): a
rolled-back change leaves no event, a committed one always has its deliveries.
"""

from __future__ import annotations

import uuid

from django.db import models

EVENT_TYPES = (
    "consent.activated",
    "consent.revoked",
    "consent.needs_reconsent",
    "consent.expired",
    "data.available",
    "bill.available",
)


class WebhookEndpoint(models.Model):
    """Where the company's app receives events. The signing secret is encrypted at rest
    (customers.crypto, bound to this row) and never shown after creation."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    # Event types this endpoint receives; empty: every type.
    event_types = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    secret_binding = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    secret_encrypted = models.TextField(editable=False)
    secret_prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)


class WebhookEvent(models.Model):
    """One event (the outbox row). `public_id` is the Standard Webhooks `webhook-id`."""

    public_id = models.CharField(max_length=40, unique=True, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint, with its outcome."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "pending"
        RUNNING = "RUNNING", "running"
        RETRYING = "RETRYING", "retrying"
        DELIVERED = "DELIVERED", "delivered"
        FAILED = "FAILED", "failed"
        POISONED = "POISONED", "poisoned"

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    runs = models.PositiveIntegerField(default=0)  # task runs that claimed the row
    attempts = models.PositiveIntegerField(default=0)  # HTTP tries
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="uniq_webhook_delivery")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]
        permissions = [("replay_webhookdelivery", "Can replay (re-queue) webhook deliveries")]

    def __str__(self) -> str:
        return f"Delivery {self.pk} {self.status}"


class WebhookAttempt(models.Model):
    """One HTTP try of a delivery: status code or error, duration."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"Attempt {self.pk} ({self.status_code or self.error[:40]})"
