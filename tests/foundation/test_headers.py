"""Browser-facing security headers (docs/reliability.md test 57, the response-header part): the
admin, the consent pages and the webhook answer with a Content-Security-Policy, X-Frame-Options
DENY, nosniff and a Referrer-Policy; a view's own policy is left alone; only admin requests switch
to PG&E's local time zone."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from gascap.middleware import AdminLocalTimeAndSecurityHeadersMiddleware

ADMIN = "/" + django_settings.GASCAP_ADMIN_PATH
NOTIFY_TOKEN = "test-headers-notify-token"
BATCHLIST = (
    b'<?xml version="1.0" encoding="UTF-8"?><ns0:BatchList xmlns:ns0="http://naesb.org/espi">'
    b"<ns0:resources>https://api.pge.com/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/"
    b"99999?correlationID=00000000-0000-4000-8000-000000000001</ns0:resources></ns0:BatchList>"
)


def assert_hardened(response: HttpResponse) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in directives.get("script-src", directives["default-src"])
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # same-origin by default; the consent redirect sends no-referrer (it carries `state`).
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")


@pytest.mark.django_db
def test_admin_pages_carry_the_headers():
    user = User.objects.create_superuser("op-headers", "h@example.test", "test-pass-5")
    client = Client()
    assert_hardened(client.get(f"{ADMIN}login/"))
    client.force_login(user)
    page = client.get(f"{ADMIN}ingest/fetch/")
    assert page.status_code == 200
    assert_hardened(page)
    # The policy forbids inline script: the admin page must not need any.
    assert "<script>" not in page.content.decode()


@pytest.mark.django_db
def test_webhook_responses_carry_the_headers(settings):
    settings.GASCAP_NOTIFY_TOKENS = [NOTIFY_TOKEN]
    settings.GASCAP_NOTIFY_BASIC_CREDENTIALS = []
    client = Client()
    accepted = client.post(
        f"/pge/notify/{NOTIFY_TOKEN}/", data=BATCHLIST, content_type="application/xml"
    )
    assert accepted.status_code == 200
    assert_hardened(accepted)
    refused = client.post("/pge/notify/wrong-token/", data=BATCHLIST, content_type="text/xml")
    assert refused.status_code == 404
    assert_hardened(refused)


@pytest.mark.django_db
def test_consent_page_carries_the_headers():
    response = Client().get("/consent/start/")
    assert response.status_code < 500
    assert_hardened(response)


def test_a_view_that_sets_its_own_policy_keeps_it():
    def view(request):
        response = HttpResponse("<p>x</p>")
        response["Content-Security-Policy"] = "default-src 'none'"
        return response

    middleware = AdminLocalTimeAndSecurityHeadersMiddleware(view)
    response = middleware(RequestFactory().get("/anything/"))
    assert response["Content-Security-Policy"] == "default-src 'none'"


def test_empty_policy_setting_sends_no_header(settings):
    settings.GASCAP_CONTENT_SECURITY_POLICY = ""
    middleware = AdminLocalTimeAndSecurityHeadersMiddleware(lambda request: HttpResponse("x"))
    assert "Content-Security-Policy" not in middleware(RequestFactory().get("/"))


def test_only_admin_requests_render_in_local_time(settings):
    settings.GASCAP_LOCAL_TIME_ZONE = "America/Los_Angeles"
    seen: list[str] = []

    def view(request):
        seen.append(timezone.get_current_timezone_name())
        return HttpResponse("x")

    middleware = AdminLocalTimeAndSecurityHeadersMiddleware(view)
    middleware(RequestFactory().get(f"{ADMIN}ingest/fetch/"))
    middleware(RequestFactory().get("/pge/notify/x/"))
    assert seen == ["America/Los_Angeles", "UTC"]
    assert timezone.get_current_timezone_name() == "UTC"  # reset after the request
