"""Counters shared by every process: the PG&E calls of each hour and PG&E day by kind, the
waits, and the consent-page throttles.

With Redis (REDIS_URL) a window is a hash (`HINCRBY`, expiring with its window); the budget
check-and-count is one Lua script, so two workers can never both take the last call.
Embedded (no Redis) the same hashes live in a SQLite file under `var/`, each change in one
`BEGIN IMMEDIATE` transaction (the file lock serialises processes, as the pacing file does).
When Redis does not answer, the file store keeps counting locally rather than sending uncounted.

A fresh file is switched to WAL by whichever process opens it first. SQLite answers that switch
with "database is locked" at once, without waiting its busy timeout, when another process holds
a lock on the file meanwhile (it would otherwise risk a deadlock). Every worker falls back to the
file in the same second when Redis stops, so opening retries on SQLITE_BUSY until the timeout
(seen in CI as a fetch FAILED `error_OperationalError` during a Redis restart; issue 17).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings

from gascap.pge.errors import PgeTransientError

logger = logging.getLogger(__name__)

PREFIX = "gascap:pge:budget:"
TOTAL = "_total"

# Check both windows, then count the call in both (one atomic step). Returns
# {0|1|2, hour_used, day_used}: 0 counted, 1 the hour is full, 2 the day is full.
_RESERVE_LUA = """
local h = tonumber(redis.call('HGET', KEYS[1], '_total') or '0')
local d = tonumber(redis.call('HGET', KEYS[2], '_total') or '0')
if h + 1 > tonumber(ARGV[1]) then return {1, h, d} end
if d + 1 > tonumber(ARGV[2]) then return {2, h, d} end
redis.call('HINCRBY', KEYS[1], '_total', 1)
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[2], '_total', 1)
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {0, h + 1, d + 1}
"""


@dataclass(frozen=True)
class Reservation:
    """One PG&E call counted in both its windows: the hour's and the PG&E day's counter keys,
    the call's kind, the caps (hour, day) its priority may use and how long each window's
    counts are kept (hour, day)."""

    hour_key: str
    day_key: str
    kind: str
    caps: tuple[int, int]
    ttls: tuple[int, int]

    @property
    def keys(self) -> tuple[str, str]:
        return self.hour_key, self.day_key


class CounterStore(Protocol):
    def reserve(self, reservation: Reservation) -> tuple[int, int, int]: ...

    def release(self, reservation: Reservation) -> None: ...

    def add(self, *, key: str, field: str, ttl: int, amount: int = 1) -> int: ...

    def read(self, key: str) -> dict[str, int]: ...

    def clear(self) -> None: ...


class RedisCounterStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._reserve = self.client.register_script(_RESERVE_LUA)

    def reserve(self, reservation: Reservation) -> tuple[int, int, int]:
        code, hour, day = self._reserve(
            keys=[PREFIX + key for key in reservation.keys],
            args=[*reservation.caps, reservation.kind, *reservation.ttls],
        )
        return int(code), int(hour), int(day)

    def release(self, reservation: Reservation) -> None:
        with self.client.pipeline() as pipe:
            for key in reservation.keys:
                pipe.hincrby(PREFIX + key, TOTAL, -1)
                pipe.hincrby(PREFIX + key, reservation.kind, -1)
            pipe.execute()

    def add(self, *, key: str, field: str, ttl: int, amount: int = 1) -> int:
        with self.client.pipeline() as pipe:
            pipe.hincrby(PREFIX + key, field, amount)
            pipe.expire(PREFIX + key, ttl)
            value, _ = pipe.execute()
        return int(value)

    def read(self, key: str) -> dict[str, int]:
        raw = self.client.hgetall(PREFIX + key)
        return {k.decode(): int(v) for k, v in raw.items()}

    def clear(self) -> None:
        for key in self.client.scan_iter(match=PREFIX + "*", count=500):
            self.client.delete(key)


OPEN_TIMEOUT = 30.0  # seconds: SQLite's busy timeout, and how long opening retries a busy file


def _busy_pause(seconds: float) -> None:
    """Wait before trying a busy file again (a seam: tests see each retry)."""
    time.sleep(seconds)


def _file_setup(conn: sqlite3.Connection) -> None:
    """WAL and the table, retried while another process holds the file (module docstring)."""
    deadline = time.monotonic() + OPEN_TIMEOUT
    pause = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS counters (key TEXT NOT NULL, field TEXT NOT NULL,"
                " n INTEGER NOT NULL, expires REAL NOT NULL, PRIMARY KEY (key, field))"
            )
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        _busy_pause(pause)
        pause = min(pause * 2, 0.2)


class FileCounterStore:
    """The embedded store: one SQLite file, a connection per process and thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=OPEN_TIMEOUT, isolation_level=None)
            _file_setup(conn)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _total(self, db: sqlite3.Connection, key: str, now: float) -> int:
        row = db.execute(
            "SELECT n FROM counters WHERE key = ? AND field = ? AND expires > ?", (key, TOTAL, now)
        ).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _bump(db: sqlite3.Connection, key: str, field: str, amount: int, expires: float) -> int:
        db.execute(
            "INSERT INTO counters (key, field, n, expires) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key, field) DO UPDATE SET n = n + excluded.n,"
            " expires = excluded.expires",
            (key, field, amount, expires),
        )
        row = db.execute(
            "SELECT n FROM counters WHERE key = ? AND field = ?", (key, field)
        ).fetchone()
        return int(row[0])

    def _transaction(self, work):  # type: ignore[no-untyped-def]
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def reserve(self, reservation: Reservation) -> tuple[int, int, int]:
        caps, kind = reservation.caps, reservation.kind

        def work(db: sqlite3.Connection) -> tuple[int, int, int]:
            now = time.time()
            db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            hour, day = (self._total(db, key, now) for key in reservation.keys)
            if hour + 1 > caps[0]:
                return 1, hour, day
            if day + 1 > caps[1]:
                return 2, hour, day
            for key, ttl in zip(reservation.keys, reservation.ttls, strict=True):
                self._bump(db, key, TOTAL, 1, now + ttl)
                self._bump(db, key, kind, 1, now + ttl)
            return 0, hour + 1, day + 1

        return self._transaction(work)

    def release(self, reservation: Reservation) -> None:
        def work(db: sqlite3.Connection) -> None:
            for key in reservation.keys:
                for field in (TOTAL, reservation.kind):
                    db.execute(
                        "UPDATE counters SET n = n - 1 WHERE key = ? AND field = ?", (key, field)
                    )

        self._transaction(work)

    def add(self, *, key: str, field: str, ttl: int, amount: int = 1) -> int:
        def work(db: sqlite3.Connection) -> int:
            now = time.time()
            db.execute(
                "DELETE FROM counters WHERE key = ? AND field = ? AND expires <= ?",
                (key, field, now),
            )
            return self._bump(db, key, field, amount, now + ttl)

        return self._transaction(work)

    def read(self, key: str) -> dict[str, int]:
        rows = self._db().execute(
            "SELECT field, n FROM counters WHERE key = ? AND expires > ?", (key, time.time())
        )
        return {field: int(n) for field, n in rows}

    def clear(self) -> None:
        self._transaction(lambda db: db.execute("DELETE FROM counters"))


class _FallbackStore:
    """Redis first; the file store when Redis does not answer (counted locally, logged)."""

    def __init__(self, primary: RedisCounterStore, fallback: FileCounterStore) -> None:
        self.primary, self.fallback = primary, fallback

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        import redis

        primary, fallback = getattr(self.primary, name), getattr(self.fallback, name)

        def call(*args: object, **kwargs: object) -> object:
            try:
                return primary(*args, **kwargs)
            except redis.RedisError:
                logger.warning("PG&E call budget: Redis unavailable, counting locally")
            try:
                return fallback(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                # Neither store answers: the work waits and retries, it does not fail.
                raise PgeTransientError(
                    f"PG&E call budget unavailable (Redis down, local file: {exc})",
                    code="budget_store_unavailable",
                ) from exc

        return call


_stores: dict[tuple[str, str], CounterStore] = {}


def counter_store() -> CounterStore:
    """The store for the configured REDIS_URL / VAR_DIR (one per process)."""
    redis_url = settings.REDIS_URL or ""
    path = str(Path(settings.VAR_DIR) / "pge-budget.sqlite3")
    key = (redis_url, path)
    if key not in _stores:
        file_store = FileCounterStore(Path(path))
        _stores[key] = (
            _FallbackStore(RedisCounterStore(redis_url), file_store)  # type: ignore[assignment]
            if redis_url
            else file_store
        )
    return _stores[key]
