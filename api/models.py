"""API keys: named, revocable, scoped, stored only as a SHA-256 digest.

A key is 32 random bytes (`secrets.token_urlsafe`), so a plain SHA-256 is enough to make a
database dump useless to an attacker (no dictionary to run, unlike a password); `prefix` is the
first characters of the key, kept so an operator can tell keys apart without seeing one.
"""

from __future__ import annotations

from django.db import models


class ApiScope(models.TextChoices):
    READ = "read", "read data"
    CONSENT = "consent", "create consent sessions"


class ApiKey(models.Model):
    """One key of the company's app. Revoked keys stay (audit), and authenticate nothing."""

    Scope = ApiScope

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Comma-separated ApiScope values, e.g. "read,consent".
    scopes = models.CharField(max_length=100, default=ApiScope.READ)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_list(self) -> list[str]:
        return [scope for scope in self.scopes.split(",") if scope]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scope_list

    @property
    def active(self) -> bool:
        return self.revoked_at is None
