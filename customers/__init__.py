"""Customers, their consents (authorizations) with encrypted tokens, and the consent flow."""
