"""The company's app API (`/api/v1/`): keys, consent sessions, reads, exports."""

from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "App API"
    default_auto_field = "django.db.models.BigAutoField"
