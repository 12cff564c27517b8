"""The project package as a Django app, so that its system checks and templates load; and the
admin app's configuration, whose default site is gascap's OTP-aware admin site."""

from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class GascapConfig(AppConfig):
    # The module holds two configs: "gascap" in INSTALLED_APPS means this one.
    default = True
    name = "gascap"
    verbose_name = "gascap"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from gascap import checks  # noqa: F401  (registers the system checks)
        from gascap.beat import schedules_on_migrate

        # `migrate` creates the missing beat schedules (every deploy migrates).
        post_migrate.connect(schedules_on_migrate, dispatch_uid="gascap.beat.schedules")


class GascapAdminConfig(admin_apps.AdminConfig):
    """`django.contrib.admin` with `admin.site` built from `GascapAdminSite`.

    Swapping the default site here (instead of a second site in urls.py) keeps every
    `@admin.register` in customers/, ingest/, django-otp and axes on the one site we serve.
    """

    default = False
    default_site = "gascap.admin_site.GascapAdminSite"

    def ready(self) -> None:
        super().ready()
        from gascap import admin_site  # noqa: F401  (connects the lockout log receiver)
