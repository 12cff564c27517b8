"""The project package as a Django app, so that its system checks and templates load."""

from __future__ import annotations

from django.apps import AppConfig


class GascapConfig(AppConfig):
    name = "gascap"
    verbose_name = "gascap"

    def ready(self) -> None:
        from gascap import checks  # noqa: F401  (registers the system checks)
