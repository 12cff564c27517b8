"""The one Celery app. Configuration lives in Django settings under the CELERY_ namespace;
this module only adds what reliability needs and the settings module should not repeat."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gascap.settings.local")

app = Celery("gascap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
