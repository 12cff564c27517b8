"""Alerts sent to operators: one row per condition and day, written before anything is sent, so
a condition alerts once a day however often the check runs, and a send that failed is retried
by the next check (the row stays unsent) instead of being lost."""

from __future__ import annotations

from django.db import models


class AlertSent(models.Model):
    condition = models.CharField(max_length=64)
    day = models.DateField(help_text="PG&E's (Pacific) day the alert belongs to")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()
    mailed_at = models.DateTimeField(null=True, blank=True)
    webhook_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["condition", "day"], name="ops_alert_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.condition}"
