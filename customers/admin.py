"""The operators' admin for customers and consents.

Token columns are never shown, editable or exported: they are `editable=False` on the models
(so no admin form includes them) and no list, readonly field or inline names them
(docs/reliability.md R8, test 52). Actions call one service each; data requests go by task name.
Every action needs `customers.change_authorization` and writes a LogEntry per row (what was
done, never a token). A consent's usage points show the data received for each, linking to
ingest's usage point page (looked up by app label: customers does not import ingest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.db.models import Count, Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from customers.authorization_sync import authorization_revoke
from customers.models import Authorization, ClientToken, Customer, SubscriptionUsagePoint
from customers.publish import subscription_request_enqueue
from customers.scope import scope_describe
from customers.tokens import AuthorizationUnavailable, authorization_refresh
from gascap.pge.errors import PgeError
from gascap.pge.gate import BudgetExhausted

logger = logging.getLogger(__name__)

PGE_STATUSES = {0: "revoked", 1: "active", 2: "denied"}

STATUS_COLOURS = {
    Authorization.Status.ACTIVE: "#1a7f37",
    Authorization.Status.PENDING: "#6e7781",
    Authorization.Status.NEEDS_RECONSENT: "#bc4c00",
    Authorization.Status.REVOKED: "#cf222e",
    Authorization.Status.EXPIRED: "#8250df",
}

# The fields an operator sees on a consent; never a token column or the token binding.
AUTHORIZATION_FIELDS = (
    "customer",
    "subscription_id",
    "status",
    "pge_status_label",
    "scope_readable",
    "scope",
    "authorized_start",
    "consent_end",
    "published_start",
    "published_end",
    "access_token_expires_at",
    "pge_token_expires_at",
    "last_refreshed_at",
    "last_error",
    "last_error_at",
    "resource_uri",
    "authorization_uri",
    "created_at",
    "updated_at",
)


@admin.display(description="status", ordering="status")
def status_badge(obj: Authorization) -> str:
    colour = STATUS_COLOURS.get(obj.status, "#6e7781")
    return format_html(
        '<strong class="gascap-status" style="color: {}">{}</strong>',
        colour,
        obj.get_status_display(),
    )


def _local(moment: Any) -> str:
    # The admin renders in PG&E's local zone (gascap.middleware activates it).
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


@admin.display(description="consent ends", ordering="authorized_end")
def consent_end(obj: Authorization) -> str:
    """The end of PG&E's `authorizedPeriod`; none with a start means open-ended
    (docs/pge-protocol.md, "Data APIs")."""
    if obj.authorized_end is not None:
        return _local(obj.authorized_end)
    return "open-ended" if obj.authorized_start is not None else "-"


@admin.display(description="access token expiry at PG&E (Authorization expires_at)")
def pge_token_expires_at(obj: Authorization) -> str:
    # PG&E's Authorization `expires_at` is the access token's expiry, not the consent's end.
    return _local(obj.expires_at)


@admin.display(description="last error")
def last_error_short(obj: Authorization) -> str:
    return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error


class AuthorizationInline(admin.TabularInline):
    model = Authorization
    fields = (
        "subscription_id",
        status_badge,
        "access_token_expires_at",
        consent_end,
        last_error_short,
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # consents come from PG&E's flow, never typed in


@admin.display(description="data received (local time)")
def data_coverage(obj: SubscriptionUsagePoint) -> str:
    """The readings ingest stored for this usage point, linking to its page there."""
    # ingest's usage point bound to this consent by the fetch that stored it (never matched
    # by href: docs/espi.md, "Which usage points a document may write").
    point = (
        apps.get_model("ingest", "UsagePoint")
        .objects.filter(authorization_id=obj.authorization_id, usage_point_id=obj.usage_point_id)
        .annotate(
            first=Min("series__readings__start"),
            last=Max("series__readings__start"),
            count=Count("series__readings"),
        )
        .first()
    )
    if point is None:
        return "no data yet"
    url = reverse("admin:ingest_usagepoint_change", args=[point.pk])
    if not point.count:
        return format_html('<a href="{}">no readings yet</a>', url)
    return format_html(
        '<a href="{}">{} readings, {} to {}</a>',
        url,
        point.count,
        _local(point.first),
        _local(point.last),
    )


class UsagePointInline(admin.TabularInline):
    model = SubscriptionUsagePoint
    fields = ("usage_point_id", "service_kind", data_coverage, "created_at")
    readonly_fields = ("usage_point_id", data_coverage, "created_at")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("display_name", "external_id", "email", "created_at")
    search_fields = ("display_name", "external_id", "email", "authorizations__subscription_id")
    # external_id is the company app's link to its user: set by consent sessions only.
    readonly_fields = ("public_id", "external_id", "created_at")
    fields = ("display_name", "email", "external_id", "public_id", "created_at")
    inlines = (AuthorizationInline,)


@admin.register(Authorization)
class AuthorizationAdmin(admin.ModelAdmin):
    list_display = (
        "subscription_id",
        "customer",
        status_badge,
        "access_token_expires_at",
        consent_end,
        last_error_short,
    )
    list_filter = ("status", "usage_points__service_kind", "created_at")
    search_fields = ("subscription_id", "customer__display_name", "customer__email")
    list_select_related = ("customer",)
    fields = AUTHORIZATION_FIELDS
    readonly_fields = AUTHORIZATION_FIELDS
    inlines = (UsagePointInline,)
    actions = ("refresh_tokens_now", "request_data_now", "revoke_consent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row is the record of the consent

    consent_end = staticmethod(consent_end)
    pge_token_expires_at = staticmethod(pge_token_expires_at)

    @admin.display(description="PG&E status", ordering="pge_status")
    def pge_status_label(self, obj: Authorization) -> str:
        # PG&E's Authorization status (docs/pge-protocol.md): 0 revoked, 1 active, 2 denied.
        if obj.pge_status is None:
            return "-"
        label = PGE_STATUSES.get(obj.pge_status)
        return f"{label} ({obj.pge_status})" if label else str(obj.pge_status)

    @admin.display(description="scope (readable)")
    def scope_readable(self, obj: Authorization) -> str:
        return scope_describe(obj.scope_params)

    def _each_at_pge(
        self,
        request: HttpRequest,
        queryset: QuerySet[Authorization],
        call: Callable[[int], object],
        *,
        done_note: str,
        failed_note: str,
    ) -> tuple[int, list[str]]:
        """`call(authorization pk)` for each selected consent, each outcome noted in the row's
        history. What can stop one (the consent unusable, PG&E's error, the call budget spent)
        stops only that one. Returns how many succeeded and "subscription id: error" for each
        that did not."""
        done, failed = 0, []
        for authorization in queryset:
            try:
                call(authorization.pk)
            except (AuthorizationUnavailable, PgeError, BudgetExhausted) as exc:
                failed.append(f"{authorization.subscription_id}: {exc}")
                self.log_change(request, authorization, f"{failed_note}: {exc}"[:200])
            else:
                done += 1
                self.log_change(request, authorization, done_note)
        return done, failed

    @admin.action(description="Refresh tokens now", permissions=["change"])
    def refresh_tokens_now(self, request: HttpRequest, queryset: QuerySet[Authorization]) -> None:
        now = timezone.now()
        done, failed = self._each_at_pge(
            request,
            queryset,
            lambda pk: authorization_refresh(authorization_id=pk, now=now, force=True),
            done_note="Refreshed tokens at PG&E",
            failed_note="Token refresh failed",
        )
        if done:
            self.message_user(request, f"Refreshed {done} token(s).", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, f"Not refreshed: {failure}", messages.WARNING)

    @admin.action(description="Request data now", permissions=["change"])
    def request_data_now(self, request: HttpRequest, queryset: QuerySet[Authorization]) -> None:
        active = queryset.filter(status=Authorization.Status.ACTIVE)
        for authorization in active:
            subscription_request_enqueue(authorization_id=authorization.pk)
            self.log_change(request, authorization, "Requested data from PG&E")
        skipped = queryset.count() - active.count()
        self.message_user(request, f"Requested data for {active.count()} consent(s).")
        if skipped:
            self.message_user(request, f"Skipped {skipped} inactive consent(s).", messages.WARNING)

    @admin.action(description="Revoke consent at PG&E", permissions=["change"])
    def revoke_consent(
        self, request: HttpRequest, queryset: QuerySet[Authorization]
    ) -> HttpResponse | None:
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Revoke consent at PG&E?",
                "authorizations": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "customers/admin/revoke_confirmation.html", context)
        now = timezone.now()
        revoked, failed = self._each_at_pge(
            request,
            queryset,
            lambda pk: authorization_revoke(authorization_id=pk, now=now),
            done_note="Revoked consent at PG&E",
            failed_note="Revocation failed",
        )
        for failure in failed:
            self.message_user(request, f"Could not revoke {failure}", messages.ERROR)
        if revoked:
            self.message_user(request, f"Revoked {revoked} consent(s).", messages.SUCCESS)
        return None


@admin.register(ClientToken)
class ClientTokenAdmin(admin.ModelAdmin):
    list_display = ("__str__", "access_token_expires_at", "last_refreshed_at", "last_error")
    fields = (
        "scope",
        "access_token_expires_at",
        "last_refreshed_at",
        "last_error",
        "last_error_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
