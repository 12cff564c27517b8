"""Everything the sandbox remembers: issued codes and tokens, authorizations, correlation ids
of asynchronous requests, faults, recorded requests and sent notifications.

Thread-safe (one lock), time from an injectable clock, kept in memory for tests and persisted
to a JSON file when run as a command (so a restart keeps issued tokens). Tokens are random
and only ever stored here: records of requests say which class of token was used, never the
token itself.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox.demo import DEFAULT_SCOPE, DEMO_CUSTOMERS, DemoCustomer
from sandbox.faults import Fault

# PG&E: the authorization code lives about 600 s; access tokens 3600 s
# (docs/pge-protocol.md "OAuth2").
CODE_LIFETIME = 600
ACCESS_TOKEN_LIFETIME = 3600
CLIENT_TOKEN_LIFETIME = 3600
# History offered: two years (scope HistoryLength). A consent is open-ended unless the
# customer picked a number of days on the consent page (the sandbox's own option).
HISTORY_SECONDS = 63072000
MAX_RECORDED_REQUESTS = 2000

Clock = Callable[[], float]


class FakeClock:
    """A clock for tests: starts where told and only moves with `advance`."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    token_class: str | None  # "customer", "client", "invalid" or None (no bearer)
    subscription_id: str | None
    client_cert_subject: str | None
    status: int
    at: float


@dataclass
class SentNotification:
    url: str
    resources: list[str]
    status: int | None
    error: str | None
    at: float


@dataclass
class TokenInfo:
    token_class: str  # "customer" or "client"
    subscription_id: str | None


@dataclass
class _Data:
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    correlations: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    service_up: bool = True


class SandboxState:
    """The sandbox's memory. All methods are keyword-only and take the lock."""

    def __init__(self, *, clock: Clock = time.time, path: Path | None = None) -> None:
        self.clock = clock
        self.path = path
        self._lock = threading.RLock()
        self._data = _Data()
        if path is not None and path.is_file():
            self._data = _Data(**json.loads(path.read_text()))

    # --- persistence -------------------------------------------------------------------
    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # Tokens live in this file: readable by the owner only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self._data), handle)
        os.replace(tmp, self.path)

    def reset(self) -> None:
        with self._lock:
            self._data = _Data()
            self._save()

    # --- consent and codes -------------------------------------------------------------
    def code_issue(self, *, customer: DemoCustomer, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._data.codes[code] = {
                "customer": customer.key,
                "subscription_id": customer.subscription_id,
                "redirect_uri": redirect_uri,
                "expires_at": self.clock() + CODE_LIFETIME,
                "used": False,
            }
            self._save()
        return code

    def code_redeem(self, *, code: str, redirect_uri: str) -> tuple[str | None, str]:
        """(subscription_id, "") or (None, reason). A code works once, for 600 s, bound to
        the redirect_uri it was issued for (RFC 6749 §4.1.3)."""
        with self._lock:
            record = self._data.codes.get(code)
            if record is None:
                return None, "unknown authorization code"
            if record["used"]:
                return None, "authorization code already used"
            record["used"] = True
            self._save()
            if self.clock() >= record["expires_at"]:
                return None, "authorization code expired"
            if record["redirect_uri"] != redirect_uri:
                return None, "redirect_uri does not match the authorization request"
            return record["subscription_id"], ""

    def authorization_grant(
        self, *, subscription_id: str, authorized_seconds: int | None = None
    ) -> None:
        """Active consent for a customer, open-ended unless `authorized_seconds` is given.
        Re-authorization by the same customer cancels the old tokens at PG&E
        (docs/pge-protocol.md "OAuth2"), so they are revoked here too."""
        now = self.clock()
        with self._lock:
            self._revoke_tokens(subscription_id)
            self._data.authorizations[subscription_id] = {
                "status": 1,
                "authorized_start": now,
                "authorized_end": None if authorized_seconds is None else now + authorized_seconds,
                "published_start": now - HISTORY_SECONDS,
                # The expiry of the subscription's latest access token (none issued yet).
                "token_expires_at": None,
                "scope": DEFAULT_SCOPE,
                "updated": now,
            }
            self._save()

    def _revoke_tokens(self, subscription_id: str) -> None:
        for table in (self._data.access_tokens, self._data.refresh_tokens):
            for token in [t for t, r in table.items() if r["subscription_id"] == subscription_id]:
                del table[token]

    def authorization_revoke(self, *, subscription_id: str | None) -> None:
        """Status 0 and every token of the subscription dead (None: every subscription)."""
        with self._lock:
            targets = (
                list(self._data.authorizations) if subscription_id is None else [subscription_id]
            )
            for sid in targets:
                record = self._data.authorizations.get(sid)
                if record is not None:
                    record["status"] = 0
                    record["updated"] = self.clock()
                self._revoke_tokens(sid)
            self._save()

    def authorization_get(self, *, subscription_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._data.authorizations.get(subscription_id)
            return dict(record) if record else None

    def authorizations_all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {sid: dict(r) for sid, r in self._data.authorizations.items()}

    def authorization_active(self, *, subscription_id: str) -> bool:
        """Status 1 and inside its authorized period: a consent whose period is over serves no
        data and refreshes no token (docs/pge-protocol.md "Data APIs": the period ends it)."""
        record = self.authorization_get(subscription_id=subscription_id)
        if record is None or record["status"] != 1:
            return False
        end = record.get("authorized_end")
        return end is None or self.clock() < end

    # --- tokens ------------------------------------------------------------------------
    def tokens_issue(self, *, subscription_id: str) -> tuple[str, str]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            expires_at = self.clock() + ACCESS_TOKEN_LIFETIME
            self._data.access_tokens[access] = {
                "subscription_id": subscription_id,
                "expires_at": expires_at,
            }
            authorization = self._data.authorizations.get(subscription_id)
            if authorization is not None:
                authorization["token_expires_at"] = expires_at
            self._data.refresh_tokens[refresh] = {"subscription_id": subscription_id}
            self._save()
        return access, refresh

    def refresh_rotate(self, *, refresh_token: str) -> tuple[str, str, str] | None:
        """(subscription_id, access, refresh): the old refresh token stops working."""
        with self._lock:
            record = self._data.refresh_tokens.pop(refresh_token, None)
            if record is None:
                return None
            sid = record["subscription_id"]
            if not self.authorization_active(subscription_id=sid):
                self._save()
                return None
            access, refresh = self.tokens_issue(subscription_id=sid)
            return sid, access, refresh

    def client_token_issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._data.client_tokens[token] = {"expires_at": self.clock() + CLIENT_TOKEN_LIFETIME}
            self._save()
        return token

    def token_lookup(self, *, token: str) -> TokenInfo | None:
        """The class of a live bearer token, or None when unknown or expired."""
        now = self.clock()
        with self._lock:
            record = self._data.access_tokens.get(token)
            if record is not None and now < record["expires_at"]:
                return TokenInfo("customer", record["subscription_id"])
            record = self._data.client_tokens.get(token)
            if record is not None and now < record["expires_at"]:
                return TokenInfo("client", None)
        return None

    # --- asynchronous requests ---------------------------------------------------------
    def correlation_create(
        self,
        *,
        kind: str,
        target: str,
        published_min: int | None,
        published_max: int | None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        correlation_id = str(uuid.uuid4())
        with self._lock:
            self._data.correlations[correlation_id] = {
                **(extra or {}),
                "kind": kind,
                "target": target,
                "published_min": published_min,
                "published_max": published_max,
                "created": self.clock(),
            }
            self._save()
        return correlation_id

    def correlation_get(self, *, correlation_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._data.correlations.get(correlation_id)
            return dict(record) if record else None

    # --- faults ------------------------------------------------------------------------
    def fault_add(self, fault: Fault) -> Fault:
        with self._lock:
            self._data.faults.append(fault.to_dict())
            self._save()
        if fault.kind == "revoked":
            # Revocation is a state change at PG&E: the Authorization shows status 0 at once.
            self.authorization_revoke(subscription_id=fault.subscription_id)
        return fault

    def fault_take(
        self, *, kinds: tuple[str, ...], subscription_id: str | None, endpoint: str
    ) -> Fault | None:
        """The first matching fault, counting one use (and dropping it when used up)."""
        with self._lock:
            for index, raw in enumerate(self._data.faults):
                fault = Fault.from_dict(raw)
                if fault.kind not in kinds or not fault.matches(subscription_id, endpoint):
                    continue
                if fault.times is not None:
                    if fault.times <= 1:
                        del self._data.faults[index]
                    else:
                        raw["times"] = fault.times - 1
                    self._save()
                return fault
        return None

    def faults_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._data.faults]

    def faults_clear(self) -> None:
        with self._lock:
            self._data.faults.clear()
            self._save()

    def service_set(self, *, up: bool) -> None:
        with self._lock:
            self._data.service_up = up
            self._save()

    def service_up(self) -> bool:
        with self._lock:
            return self._data.service_up

    # --- inspection --------------------------------------------------------------------
    def _inspection_append(self, log: str, entry: Any) -> None:
        """Add `entry` to the inspection log `log` ("requests", "notifications"), which keeps
        the last MAX_RECORDED_REQUESTS. Not persisted on every entry: the record is for
        inspection, not recovery."""
        with self._lock:
            entries: list[dict[str, Any]] = getattr(self._data, log)
            entries.append(asdict(entry))
            del entries[:-MAX_RECORDED_REQUESTS]

    def request_record(self, request: RecordedRequest) -> None:
        self._inspection_append("requests", request)

    def requests_list(self) -> list[RecordedRequest]:
        with self._lock:
            return [RecordedRequest(**r) for r in self._data.requests]

    def notification_record(self, notification: SentNotification) -> None:
        self._inspection_append("notifications", notification)

    def notifications_list(self) -> list[SentNotification]:
        with self._lock:
            return [SentNotification(**n) for n in self._data.notifications]


def customers_with_consent(state: SandboxState) -> list[DemoCustomer]:
    """Demo customers whose authorization is active (what a Bulk request covers)."""
    return [
        c for c in DEMO_CUSTOMERS if state.authorization_active(subscription_id=c.subscription_id)
    ]
