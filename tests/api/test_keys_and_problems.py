"""API keys (hashed, named, scoped, revocable), Bearer auth and problem-document errors."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from api.keys import api_key_authenticate, api_key_create, api_key_revoke
from api.models import ApiKey
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["type"].startswith("/api/v1/problems/")
    assert body["title"]
    return body


def test_command_prints_the_key_once_on_its_last_line_and_stores_only_its_digest(capsys):
    call_command("api_key_create", "mobile backend", "--scope", "read,consent")
    out = capsys.readouterr().out.strip().splitlines()
    plaintext = out[-1]
    assert plaintext.startswith("gascap_") and len(plaintext) > 40
    key = ApiKey.objects.get()
    assert key.name == "mobile backend"
    assert key.scope_list == ["read", "consent"]
    assert key.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert api_key_authenticate(presented=plaintext, now=timezone.now()) == key


def test_command_refuses_an_unknown_scope():
    with pytest.raises(CommandError, match="unknown scope"):
        call_command("api_key_create", "x", "--scope", "read,admin")
    assert not ApiKey.objects.exists()


def test_missing_wrong_and_revoked_keys_answer_401_problem_documents():
    body = problem(ApiClient(None).post("/api/v1/consent-sessions", {}), 401)
    assert body["code"] == "unauthorized"
    assert problem(ApiClient("gascap_nope").post("/api/v1/consent-sessions", {}), 401)
    key, plaintext = api_key_create(name="old", scopes=["consent"], now=timezone.now())
    api_key_revoke(key=key, now=timezone.now())
    response = ApiClient(plaintext).post("/api/v1/consent-sessions", {})
    assert problem(response, 401)["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_read_key_cannot_create_consent_sessions(reader):
    body = {"external_id": "u1", "return_url": "http://localhost:3000/done"}
    assert problem(reader.post("/api/v1/consent-sessions", body), 403)["code"] == (
        "insufficient-scope"
    )


def test_unknown_paths_wrong_methods_and_bad_bodies_are_problem_documents(app):
    assert problem(app.get("/api/v1/no-such-thing"), 404)["code"] == "not-found"
    assert problem(app.get("/api/v1/consent-sessions"), 405)["code"] == "method-not-allowed"
    response = app.client.post(
        "/api/v1/consent-sessions",
        "{not json",
        content_type="application/json",
        headers=app.headers,
    )
    assert response.status_code in (400, 422)
    assert response["Content-Type"] == PROBLEM
    body = problem(app.post("/api/v1/consent-sessions", {"external_id": "u1"}), 422)
    assert body["code"] == "invalid-parameters"


def test_openapi_document_and_local_docs_page():
    document = json.loads(Client().get("/api/v1/openapi.json").content)
    assert document["openapi"].startswith("3.")
    assert "/api/v1/consent-sessions" in document["paths"]
    page = Client().get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    # The page's files are django-ninja's own, served from here ("ninja" is not an installed
    # app: each one the page names is found by the static files finders).
    names = re.findall(r'(?:href|src)="/static/([^"]+)"', html)
    assert {
        "ninja/swagger-ui.css",
        "ninja/swagger-ui-bundle.js",
        "ninja/swagger-ui-init.js",
    } <= set(names)
    assert all(finders.find(name) for name in names)


def test_admin_creates_a_key_shows_it_once_and_revokes_it(client):
    user = get_user_model().objects.create_superuser("op", "op@example.org", "pw-123456789")
    client.force_login(user)
    response = client.post(
        "/admin/api/apikey/add/", {"name": "from admin", "scope_choices": ["read"]}
    )
    assert response.status_code == 200
    html = response.content.decode()
    key = ApiKey.objects.get(name="from admin")
    plaintext = html.split('<pre id="api-key">')[1].split("</pre>")[0]
    assert api_key_authenticate(presented=plaintext, now=timezone.now()) == key
    detail = client.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert plaintext not in detail and key.key_hash not in detail
    client.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    assert api_key_authenticate(presented=plaintext, now=timezone.now()) is None


def test_openapi_documents_every_endpoint_with_its_auth_failures():
    document = json.loads(Client().get("/api/v1/openapi.json").content)
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/consent-sessions",
        "/api/v1/customers/{external_id}",
        "/api/v1/usage-points/{usage_point_id}",
        "/api/v1/usage-points/{usage_point_id}/readings",
        "/api/v1/usage-points/{usage_point_id}/totals",
        "/api/v1/usage-points/{usage_point_id}/bills",
        "/api/v1/usage-points/{usage_point_id}/export",
    }
    for item in paths.values():
        for operation in item.values():
            responses = {int(code): body for code, body in operation["responses"].items()}
            assert operation["security"] == [{"ApiKeyBearer": []}]
            assert "application/problem+json" in responses[401]["content"]
            assert 403 in responses
