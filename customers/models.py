"""Customers, their consents (Authorization) with encrypted tokens, the subscription's usage
points, the client-credentials token and the one-time OAuth `state` records.

Token columns hold only ciphertext from `customers.crypto`, bound to the row's
`token_binding` and the column name, and are `editable=False` so no admin form or ModelForm
ever includes them. Read and write them through `token_read` / `token_write`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import models

from customers import crypto


class TokenCarrier(models.Model):
    """A row with encrypted token columns bound to it (Authorization, ClientToken): an access
    token, its expiry, and the outcome of the last refresh."""

    # Part of every ciphertext's authenticated payload: copying a ciphertext into another row
    # fails to decrypt (docs/reliability.md test 51). Never changes once the row exists.
    token_binding = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    access_token_encrypted = models.TextField(blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def _binding(self) -> str:
        return f"{self._meta.label_lower}:{self.token_binding}"

    def token_read(self, field: str) -> str | None:
        """The plaintext of token column `field` (None when empty). Raises TokenDecryptError."""
        ciphertext = getattr(self, field)
        if not ciphertext:
            return None
        return crypto.token_decrypt(ciphertext, binding=self._binding(), field=field)

    def token_write(self, field: str, value: str | None) -> None:
        setattr(
            self,
            field,
            crypto.token_encrypt(value, binding=self._binding(), field=field) if value else "",
        )

    @property
    def access_token(self) -> str | None:
        return self.token_read("access_token_encrypted")

    def access_token_fresh(self, *, now: datetime, skew: timedelta) -> bool:
        """A usable access token that does not expire within `skew`."""
        return bool(
            self.access_token_encrypted
            and self.access_token_expires_at
            and self.access_token_expires_at > now + skew
        )


class Customer(models.Model):
    """A PG&E customer who gave (or is giving) consent. Holds no PG&E credentials."""

    public_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    display_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    # The company's own id for this user (set by a consent session of the app API); NULL for
    # customers who consented through the plain /consent/start/ (NULLs do not collide).
    external_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    # When the retention job deleted this customer's readings, rollups and bills
    # (GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS after the last consent was revoked).
    data_purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.display_name


class ConsentSession(models.Model):
    """A single-use link the company's app gives its user to start a PG&E consent.

    Only the SHA-256 of the link's token is stored. Opening the link spends it (a conditional
    UPDATE on `used_at`) and starts the ordinary OAuth flow with a state bound to this session;
    after PG&E's callback the browser goes to `return_url` (an allow-listed origin of the app,
    `GASCAP_APP_RETURN_ORIGINS`) with `consent_id` and `status`.
    """

    public_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    external_id = models.CharField(max_length=200)
    return_url = models.URLField(max_length=2000)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # Filled after the callback: what the app was told.
    authorization = models.ForeignKey(
        "Authorization", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"ConsentSession {self.public_id} ({self.external_id})"


class AuthorizationStatus(models.TextChoices):
    PENDING = "PENDING", "pending"
    ACTIVE = "ACTIVE", "active"
    REVOKED = "REVOKED", "revoked"
    EXPIRED = "EXPIRED", "expired"
    NEEDS_RECONSENT = "NEEDS_RECONSENT", "needs re-consent"


class Authorization(TokenCarrier):
    """One consent at PG&E: subscription id = authorization id = retail customer id
    (docs/pge-protocol.md, code exchange), its scope and periods, and the customer's tokens."""

    Status = AuthorizationStatus

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="authorizations")
    public_id = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    status = models.CharField(
        max_length=20, choices=AuthorizationStatus.choices, default=AuthorizationStatus.PENDING
    )
    # NULL until the exchange answered; unique when set (NULLs do not collide).
    subscription_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    resource_uri = models.URLField(max_length=500, blank=True)
    authorization_uri = models.URLField(max_length=500, blank=True)
    scope = models.TextField(blank=True)
    scope_params = models.JSONField(default=dict, blank=True)
    authorized_start = models.DateTimeField(null=True, blank=True)
    authorized_end = models.DateTimeField(null=True, blank=True)
    published_start = models.DateTimeField(null=True, blank=True)
    published_end = models.DateTimeField(null=True, blank=True)
    # The Authorization resource's `expires_at`: the *access token's* expiry as PG&E reports
    # it (ESPI "Expiration period for the access token"), never the consent's end, which is
    # `authorized_end` (NULL: open-ended). docs/pge-protocol.md, "Data APIs".
    expires_at = models.DateTimeField(null=True, blank=True)
    pge_status = models.SmallIntegerField(null=True, blank=True)
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    # Set (and committed) before a refresh request goes to PG&E, cleared when PG&E's answer
    # is stored or PG&E answered an error. Still set on a later refresh: an earlier request
    # may have rotated the refresh token at PG&E and its answer was lost (a crash between
    # the answer and our commit, a timeout), so an invalid_grant then says so.
    refresh_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the consent became REVOKED (None while it is not): the retention clock.
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "access_token_expires_at"])]

    def __str__(self) -> str:
        return f"Authorization {self.subscription_id or self.public_id} ({self.status})"

    @property
    def refresh_token(self) -> str | None:
        return self.token_read("refresh_token_encrypted")

    def tokens_set(
        self, *, access_token: str | None, refresh_token: str | None, expires_at: datetime | None
    ) -> None:
        self.token_write("access_token_encrypted", access_token)
        self.token_write("refresh_token_encrypted", refresh_token)
        self.access_token_expires_at = expires_at

    def tokens_erase(self) -> None:
        self.access_token_encrypted = ""
        self.refresh_token_encrypted = ""
        self.access_token_expires_at = None


class ServiceKind(models.TextChoices):
    ELECTRIC = "electric", "electric"
    GAS = "gas", "gas"
    OTHER = "other", "other / not yet known"


class SubscriptionUsagePoint(models.Model):
    """A UsagePoint (PG&E: one service agreement / meter) that the subscription covers."""

    ServiceKind = ServiceKind

    authorization = models.ForeignKey(
        Authorization, on_delete=models.CASCADE, related_name="usage_points"
    )
    usage_point_id = models.CharField(max_length=64)
    service_kind = models.CharField(
        max_length=10, choices=ServiceKind.choices, default=ServiceKind.OTHER
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["authorization", "usage_point_id"], name="uniq_subscription_usage_point"
            )
        ]

    def __str__(self) -> str:
        return f"UsagePoint {self.usage_point_id} ({self.service_kind})"


class ClientToken(TokenCarrier):
    """The client-credentials token (Bulk, Authorization, ReadServiceStatus): one row, pk 1."""

    SINGLETON_PK = 1

    scope = models.TextField(blank=True)

    def __str__(self) -> str:
        return "client-credentials token"


class ConsentState(models.Model):
    """One OAuth `state`: random, single-use, short-lived, bound to one browser session.

    Only the SHA-256 of the state and of the session's binding nonce are stored, so a database
    reader cannot complete someone else's flow.
    """

    state_hash = models.CharField(max_length=64, unique=True)
    session_binding_hash = models.CharField(max_length=64)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True)
    next_path = models.CharField(max_length=500, blank=True)
    # "start" (our button / the seed's /Goto_login), "portal" (PG&E-initiated) or "session"
    # (a consent session of the app API).
    source = models.CharField(max_length=10, default="start")
    consent_session = models.ForeignKey(
        ConsentSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"ConsentState {self.pk}"
