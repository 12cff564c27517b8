"""Bearer authentication of the app API: `Authorization: Bearer <key>` and the key's scope.

A missing, unknown or revoked key answers 401; a valid key without the operation's scope
answers 403 (a `read` key cannot create consent sessions).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from api.keys import api_key_authenticate
from api.models import ApiKey, ApiScope
from api.problems import Problem


class ApiKeyBearer(HttpBearer):
    """Accepts an active key that has `scope`."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = api_key_authenticate(presented=token, now=timezone.now())
        if key is None:
            return None
        if not key.has_scope(self.scope):
            raise Problem(403, "insufficient-scope", f"this key lacks the {self.scope!r} scope")
        return key


read_key = ApiKeyBearer(ApiScope.READ)
consent_key = ApiKeyBearer(ApiScope.CONSENT)
