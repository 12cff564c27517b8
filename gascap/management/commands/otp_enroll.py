"""`manage.py otp_enroll USERNAME`: give an operator a confirmed TOTP device for the admin.

Any TOTP device the operator had is replaced (a lost phone is re-enrolled the same way), so
the old authenticator stops working at once. The `otpauth://` URI and the base32 secret are
printed once, on stdout, for the operator's authenticator app; they are not stored anywhere
else in clear and never logged. The admin never shows them (OTP_ADMIN_HIDE_SENSITIVE_DATA).
"""

from __future__ import annotations

from base64 import b32encode
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "authenticator"


class Command(BaseCommand):
    help = (
        "Create (or replace) an operator's TOTP device and print its otpauth:// URI and "
        "base32 secret once, for an authenticator app."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="the operator's username")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = options["username"]
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(
                f"No user {username!r}: create it first (manage.py createsuperuser)."
            ) from None
        with transaction.atomic():
            replaced, _ = TOTPDevice.objects.filter(user=user).delete()
            device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
        if replaced and options["verbosity"] >= 1:
            self.stdout.write(f"Replaced the previous TOTP device of {username!r}.")
        if not user.is_staff:
            self.stdout.write(
                self.style.WARNING(f"{username!r} is not staff: the admin stays closed to it.")
            )
        secret = b32encode(device.bin_key).decode("ascii")
        self.stdout.write(
            "Add this to the operator's authenticator app now; it is shown only once.\n"
            f"otpauth URI:   {device.config_url}\n"
            f"secret base32: {secret}\n"
            "(a QR code of the URI: e.g. `qrencode -t ansiutf8 'otpauth://...'`)"
        )
