"""The chaos run's own PostgreSQL cluster and Redis server on loopback, which its faults
restart and kill. Never the shared development services: ports come from ranges nothing
else uses (PostgreSQL 56500-56599, Redis 6700-6799) and every process is signalled by the
PID this module started or read from the cluster's own postmaster.pid.

Like `.ci/run`: the cluster belongs to the postgres user when run as root (PostgreSQL refuses
root), trust auth, fsync off; Redis with AOF (`appendfsync everysec`), no RDB snapshots.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import wait_for

PG_PORTS = range(56500, 56600)
REDIS_PORTS = range(6700, 6800)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_listening(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:`port` (a bind test would be fooled by
    the TIME_WAIT sockets a killed server leaves)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def first_free(ports: range) -> int:
    for port in ports:
        if port_free(port) and not port_listening(port):
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def pg_bin() -> Path:
    """The directory holding initdb and pg_ctl (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")


@dataclass
class LocalPostgres:
    """A throw-away cluster under `root` on `port`."""

    root: Path
    port: int
    bin: Path = field(default_factory=pg_bin)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, args: list[str]) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, timeout=120)

    def init(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        done = self._as_owner(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        )
        if done.returncode:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        return self

    def _ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off"
        )
        done = self._as_owner(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-o",
                options,
                *args,
            ]
        )
        if done.returncode:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        self._ctl("start")

    def restart_fast(self) -> None:
        """`pg_ctl restart -m fast`: every session is cut, the server is back when it returns."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        pid = self.postmaster_pid()
        if pid is not None and pid_alive(pid):
            self._ctl("stop", "-m", "fast")

    def postmaster_pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill9(self) -> None:
        """SIGKILL the postmaster and its backends (an OOM kill of the server), by PID.

        The backends go too: an orphaned backend keeps the shared memory attached and the
        next postmaster would refuse to start, where a real host's OOM kill or reboot
        leaves none."""
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError("PostgreSQL is not running")
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
        ).stdout.split()
        for victim in [pid, *map(int, children)]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        victims = [pid, *map(int, children)]
        wait_for(
            lambda: not port_listening(self.port) and not any(map(pid_alive, victims)),
            timeout=30,
            what="the killed PostgreSQL processes to go",
        )

    def _psql(self, *args: str, **run: Any) -> subprocess.CompletedProcess:
        """psql as the postgres user on this cluster (loopback, trust auth)."""
        psql = shutil.which("psql") or str(self.bin / "psql")
        argv = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args]
        return subprocess.run(argv, capture_output=True, **run)

    def createdb(self, name: str) -> None:
        self._psql("-qc", f'CREATE DATABASE "{name}"', check=True)

    def connections(self, database: str) -> int:
        """Sessions open on `database` right now (pg_stat_activity)."""
        query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"  # noqa: S608
        done = self._psql("-tAc", query, text=True, timeout=10)
        return int(done.stdout.strip() or -1) if done.returncode == 0 else -1


@dataclass
class LocalRedis:
    """A redis-server on `port` with AOF, its files under `root`."""

    root: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._pong, timeout=30, what="Redis to answer PING")

    def _pong(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: Redis flushes the AOF and exits (a clean restart, as a deploy does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
