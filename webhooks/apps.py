"""Webhooks out: events about consents and data, signed and delivered to the company's app."""

from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks out"
    default_auto_field = "django.db.models.BigAutoField"
