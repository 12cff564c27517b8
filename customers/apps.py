"""Customers, their consents (authorizations) with encrypted tokens, and the consent flow."""

from __future__ import annotations

from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"

    def ready(self) -> None:
        from customers import checks  # noqa: F401  (registers the system checks)
