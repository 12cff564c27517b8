"""Top-level URLs. Each app mounts its own; the admin path is configurable."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from api.views import api
from gascap.health import healthz
from ops.views import metrics_view

admin.site.site_header = "gascap operators"
admin.site.site_title = "gascap"

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path(settings.GASCAP_ADMIN_PATH, admin.site.urls),
    path("", include("customers.urls")),
    path("", include("ingest.urls")),
    path("api/v1/", api.urls),
]
