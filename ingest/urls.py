"""URLs of this app: the PG&E notification webhook (the path segment is its secret)."""

from __future__ import annotations

from django.urls import URLPattern, path

from ingest.webhook import notification_webhook

app_name = "ingest"

urlpatterns: list[URLPattern] = [
    path("pge/notify/<str:token>/", notification_webhook, name="notify"),
]
