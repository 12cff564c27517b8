"""ops' admin: the alerts sent (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from ops.models import AlertSent


@admin.register(AlertSent)
class AlertSentAdmin(admin.ModelAdmin):
    list_display = ("day", "condition", "subject", "mailed_at", "webhook_at", "attempts")
    list_filter = ("condition", "day")
    readonly_fields = [f.name for f in AlertSent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
