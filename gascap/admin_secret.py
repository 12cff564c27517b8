"""Admin "add" pages that create a secret the operator sees exactly once: an app API key
(`api.admin`), a webhook endpoint's signing secret (`webhooks.admin`).

The service creates the row and returns the secret in clear once; the row stores only a digest
or ciphertext. The secret is shown on the page that answers the "add" form and nowhere else:
never in a message (messages may live in a cookie), never on a later page, and that page is not
cached (`Cache-Control: no-store`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

# Where the secret waits between save_model and response_add of the same request.
_REQUEST_ATTRIBUTE = "_gascap_secret_once"


class SecretShownOnceAdmin(admin.ModelAdmin):
    """A model admin whose "add" calls a service that makes the row and its secret. Subclasses
    set `created_template` (given `object`, `secret`, `title`, `opts`) and `created_title`, and
    call `secret_created` from `save_model`."""

    created_template: str
    created_title: str

    def secret_created(
        self, request: HttpRequest, obj: models.Model, created: Any, secret: str
    ) -> None:
        """Make the admin's unsaved `obj` the row the service `created`, and keep `secret` for
        the page that answers this request."""
        obj.pk = created.pk
        obj.__dict__.update(
            {f.attname: getattr(created, f.attname) for f in created._meta.concrete_fields}
        )
        setattr(request, _REQUEST_ATTRIBUTE, secret)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(request, _REQUEST_ATTRIBUTE, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            self.created_template,
            {
                **self.admin_site.each_context(request),
                "object": obj,
                "secret": secret,
                "opts": self.model._meta,
                "title": self.created_title,
            },
        )
        response["Cache-Control"] = "no-store"
        return response
