"""The operators' admin site: a second factor (django-otp TOTP) when
`GASCAP_ADMIN_REQUIRE_OTP` is true, the log line of a brute-force lockout (django-axes), and a
banner for operators when PG&E's client certificate expires soon (gascap/certificate_expiry.py).

The admin holds every customer's consent and their data (docs/reliability.md R8, tests 58-59), so a
stolen or guessed password alone must not open it. `GascapAdminSite` is the class of
`admin.site` (see `gascap.apps.GascapAdminConfig`): every model registered anywhere lands
on it. With OTP required, a user counts as staff only once a confirmed device verified a
token in this session; the login page then asks for username, password and the 6-digit code
together. With OTP off (local settings, `make run`) it is Django's plain login and the header
says so.

Every failed login answers the same page and counts for django-axes, whatever failed: the
password, the code (wrong, empty, or no device), or the staff flag. A right password with a
wrong or missing code must look exactly like a wrong password, or the login page confirms
stolen passwords; and it must count, or a stolen password could be paired with unlimited code
guesses (django-otp's own per-device throttling applies as well).
"""

from __future__ import annotations

import logging
from typing import Any

from axes.signals import user_locked_out
from django import forms
from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import user_login_failed
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.models import Device

from gascap.certificate_expiry import client_certificate_warning

logger = logging.getLogger("gascap.admin")

PLAIN_LOGIN_TEMPLATE = "admin/login.html"


def admin_otp_required() -> bool:
    """Whether the admin asks for a verified OTP device (read per request: tests flip it)."""
    return bool(getattr(settings, "GASCAP_ADMIN_REQUIRE_OTP", True))


class OneTimeCodeInput(forms.TextInput):
    """A visible input that never renders a submitted code back: a code is single-use, and the
    page after a failure must be the same whatever was typed."""

    def format_value(self, value: Any) -> None:
        return None


class GascapOTPAuthenticationForm(OTPAdminAuthenticationForm):
    """Username, password and TOTP code in one step.

    django-otp >= 1.7 insists on an explicitly chosen device; an operator has one TOTP device
    (`manage.py otp_enroll` replaces it), so that one is chosen when the form names none.
    """

    otp_token = forms.CharField(
        required=False,
        label="Authenticator code",
        widget=OneTimeCodeInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def _chosen_device(self, user: Any) -> Device | None:
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True))
            if len(devices) == 1:
                device = Device.from_persistent_id(devices[0].persistent_id, for_verify=True)
        return device

    error_messages = {
        **OTPAdminAuthenticationForm.error_messages,
        # One message for every failure: it must not tell which of the three was wrong.
        "invalid_login": (
            "Please enter the correct %(username)s, password and authenticator code for a "
            "staff account. Note that all fields may be case-sensitive."
        ),
    }

    def _update_form(self, user: Any) -> None:
        """django-otp fills the device list and renders the password back into the page once
        the password was right: both would tell a right password from a wrong one (and echo
        it). The operator's one device is chosen automatically (`_chosen_device`)."""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ValidationError:
            if self.user_cache is not None:
                # The password was right but the code (wrong, empty, no device) or the staff
                # flag was not: authenticate() succeeded, so nothing reported a failure yet.
                # Report one so axes counts it, and forget the user.
                self.user_cache = None
                user_login_failed.send(
                    sender=type(self),
                    credentials={"username": self.cleaned_data.get("username")},
                    request=self.request,
                )
            # A wrong password was already reported by authenticate(). Either way the same
            # error, so the page cannot tell a right password from a wrong one.
            raise self.get_invalid_login_error() from None


class GascapAdminSite(OTPAdminSite):
    """`admin.site`: Django's admin, with django-otp's check switched by a setting."""

    site_header = "gascap operators"
    site_title = "gascap"

    def __init__(self, name: str = "admin") -> None:
        # The name stays "admin" so `admin:` URL names and every template keep working.
        super().__init__(name)

    @property  # type: ignore[override]
    def login_form(self) -> type[AdminAuthenticationForm]:
        return GascapOTPAuthenticationForm if admin_otp_required() else AdminAuthenticationForm

    @property  # type: ignore[override]
    def login_template(self) -> str:
        return OTPAdminSite.login_template if admin_otp_required() else PLAIN_LOGIN_TEMPLATE

    def has_permission(self, request: HttpRequest) -> bool:
        if not AdminSite.has_permission(self, request):
            return False
        if not admin_otp_required():
            return True
        # OTPMiddleware sets is_verified(); without it (a misconfigured stack) refuse.
        is_verified = getattr(request.user, "is_verified", None)
        return bool(is_verified is not None and is_verified())

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["gascap_otp_required"] = admin_otp_required()
        # Operators only (never the login page): PG&E's client certificate expires soon.
        if self.has_permission(request):
            context["gascap_certificate_warning"] = client_certificate_warning(now=timezone.now())
        return context


def client_ip_for_lockout(request: HttpRequest) -> str | None:
    """The address axes locks (AXES_CLIENT_IP_CALLABLE).

    Behind GASCAP_ADMIN_PROXY_COUNT trusted proxies that each append the address they received
    from to X-Forwarded-For, the client is the entry that many places from the right; anything
    left of it was written by the client and is ignored. With no proxy, REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR")
    count = int(getattr(settings, "GASCAP_ADMIN_PROXY_COUNT", 0))
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    return hops[-count] if len(hops) >= count else remote


@receiver(user_locked_out, dispatch_uid="gascap.admin_site.log_lockout")
def log_lockout(
    sender: object, username: str | None = None, ip_address: str | None = None, **_: object
) -> None:
    """One operator-facing line per lockout (axes logs its own, more verbose, too)."""
    logger.warning(
        "operator login locked out: username=%r ip=%s after %s failures; cool-off %s "
        "(unlock early: manage.py axes_reset_username %s)",
        username,
        ip_address,
        settings.AXES_FAILURE_LIMIT,
        settings.AXES_COOLOFF_TIME,
        username,
    )
