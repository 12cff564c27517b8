"""Everything that speaks PG&E: the mTLS transport, OAuth2, the Batch APIs, BatchList and ESPI
parsing. Imports nothing from the Django apps, so it can be used and tested alone."""
