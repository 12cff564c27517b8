"""Helpers shared by the tests that run real processes (web server, Celery worker, sandbox):
loopback HTTP, free ports, and the service URLs those subprocesses must use."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings


def loopback_session() -> requests.Session:
    """A requests session for loopback servers: no proxy or CA bundle from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_url_with_db(db: int) -> str:
    """REDIS_URL pointing at Redis database `db` (so a test's worker shares no queue)."""
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def subprocess_database_url() -> str:
    """The database pytest-django created (its NAME is rewritten at run time), as a URL a
    subprocess can be given."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
