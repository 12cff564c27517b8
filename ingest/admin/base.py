"""What every ingest admin shares: read-only bases (records are written by the pipeline, never
by an operator) and the confirmed replay action (a confirmation page, then the replay service
with the selected ids and one LogEntry per row). A new record's admin (a module next to this
one, imported by the package) subclasses these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records are written by the pipeline only; operators look and replay."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def replay_confirmed(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    what: str,
    action: str,
    replay: Callable[[list[Any]], int],
) -> HttpResponse | None:
    """The replay action's body: without `confirm=yes` a confirmation page listing the rows;
    with it, `replay(ids)` (a service that re-queues, never runs inline) and a LogEntry each."""
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(
            request,
            "admin/ingest/replay_confirm.html",
            {
                **modeladmin.admin_site.each_context(request),
                "objects": list(queryset),
                "what": what,
                "action": action,
                "title": f"Replay {what}",
            },
        )
    rows = list(queryset)
    count = replay([row.pk for row in rows])
    for row in rows:
        modeladmin.log_change(request, row, "Replayed (re-queued)")
    modeladmin.message_user(
        request, f"Re-queued {count} of {len(rows)} {what}.", level=messages.SUCCESS
    )
    return None
