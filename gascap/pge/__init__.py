"""Everything that speaks PG&E: the mTLS transport, OAuth2, the Batch APIs, BatchList and ESPI
parsing. Imports nothing from the Django apps, so it can be used and tested alone."""

from __future__ import annotations

from gascap.pge.sdk import Api, ClientCredentials, OAuth2

__all__ = ["Api", "ClientCredentials", "OAuth2"]
