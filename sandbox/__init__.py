"""A local PG&E data custodian for development and tests. Never installed in production."""
