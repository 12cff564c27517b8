"""A day of N customers end to end: `make bench-pipeline SIZE=N`.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/pipeline_bench.py --size N

The real processes on PostgreSQL and Redis: the sandbox in scale mode (sandbox/scale.py: N
synthetic consents answered through Bulk, its BatchList naming one correlation document per
`--per-document` customers) over mutual TLS in this process; gunicorn (2 workers) serving the
webhook; two Celery worker processes on every queue. gascap holds N ACTIVE authorizations. The
clock starts when the daily Bulk service (`ingest.data_requests.bulk_data_request`, what beat's
`ingest.daily_data_request` calls in bulk mode) is called once, and stops when the pipeline
has settled (tests/support.py::pipeline_settled: notifications arrived and none waits, fetches
exist and none is open) with every expected reading stored.

While the ingest runs, a probe re-POSTs the received BatchList to the webhook every 100 ms
(recorded DUPLICATE, no work started): `webhook_p99_ms` is the latency of those deliveries
under the ingest's load. Checked at the end: the stored readings' count, sum of values and sum
of start times equal what the sandbox generated (exactly once), and no fetch failed.

The floor is bench/espi_bench.py's `floor_parse` (the bare stdlib streaming parse), measured in
the same run on the sandbox's first Bulk document written to var/bench/ (the same shape).
The database is `<DATABASE_URL's name>_pipeline` (`--db-suffix`), dropped and created fresh
each run, and Redis database 13 (`--redis-db`), flushed.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_DIR = REPO / "var" / "bench"
NOTIFY_TOKEN = "bench-notify-token-0123456789"  # noqa: S105 - a local bench's own value
CLIENT_ID, CLIENT_SECRET, BULK_ID = "sandbox-client", "sandbox-secret", "50098"


def _fresh_database(url: str, suffix: str) -> str:
    import psycopg

    base, _, name = url.rpartition("/")
    bench_name = f"{name.split('?', 1)[0] or 'gascap'}{suffix}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{bench_name}"')
    return f"{base}/{bench_name}"


def _redis_url(url: str, db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _seed(count: int) -> None:
    from customers.models import Authorization, Customer
    from sandbox.scale import scale_subscription_ids

    sids = scale_subscription_ids(count)
    owners = Customer.objects.bulk_create(
        [Customer(display_name=f"Scale bench {sid}") for sid in sids], batch_size=2000
    )
    Authorization.objects.bulk_create(
        [
            Authorization(customer=owner, status=Authorization.Status.ACTIVE, subscription_id=sid)
            for owner, sid in zip(owners, sids, strict=True)
        ],
        batch_size=2000,
    )


def _stored() -> tuple[int, int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(value), 0),"
            " coalesce(sum(extract(epoch FROM start))::bigint, 0) FROM ingest_intervalreading"
        )
        count, values, starts = cursor.fetchone()
    return int(count), int(values), int(starts)


class Probe(threading.Thread):
    """Re-POSTs the received BatchList every `every` s and records each delivery's latency."""

    def __init__(self, url: str, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.body: bytes | None = None
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        from tests.support import loopback_session

        session = loopback_session()
        while not self.stopped.wait(self.every):
            if self.body is None:
                continue
            began = time.perf_counter()
            answer = session.post(
                self.url, data=self.body, headers={"Content-Type": "text/xml"}, timeout=30
            )
            self.latencies.append((time.perf_counter() - began) * 1000)
            self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1

    def p99(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)


def _pge_calls(sandbox) -> dict[str, int]:  # type: ignore[no-untyped-def]
    calls: dict[str, int] = {}
    for request in sandbox.state.requests_list():
        if "oauth" in request.path:
            kind = "token"
        elif "/Batch/Bulk/" in request.path:
            kind = "bulk_document" if "correlationID" in request.query else "bulk_request"
        else:
            kind = request.path.rsplit("/resource/", 1)[-1].split("/", 1)[0] or "other"
        calls[kind] = calls.get(kind, 0) + 1
    return calls


def _write_floor_file(sandbox, path: Path, days, today) -> None:  # type: ignore[no-untyped-def]
    from sandbox import feeds, scale
    from sandbox.feeds import FeedPart

    first, end = scale.scale_slices(
        count=sandbox.app.config.scale_customers,
        per_document=sandbox.app.config.scale_per_document,
    )[0]
    parts = [FeedPart(c, up) for c in scale.scale_customers(first, end) for up in c.usage_points]
    with path.open("wb") as out:
        for chunk in feeds.usage_feed_chunks(
            api_base=sandbox.api_base,
            self_href=f"{sandbox.api_base}Batch/Bulk/{BULK_ID}",
            parts=parts,
            days=days,
            today=today,
        ):
            out.write(chunk)


def run(
    *, size: int, per_document: int, timeout: float, db_suffix: str, redis_db: int
) -> dict[str, object]:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        raise SystemExit("bench-pipeline needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    from cryptography.fernet import Fernet

    env = {
        "DJANGO_SETTINGS_MODULE": "gascap.settings.test",
        # DEBUG off, as production runs: with it on, every connection keeps each statement's
        # SQL in its query log, which is not what a deployment pays (docs/scale.md §1.4).
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": _fresh_database(database_url, db_suffix),
        "REDIS_URL": _redis_url(redis_url, redis_db),
        "GASCAP_VAR_DIR": str(BENCH_DIR / f"pipeline-var{db_suffix}"),
        "GASCAP_FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "GASCAP_NOTIFY_TOKEN": NOTIFY_TOKEN,
        "GASCAP_PGE_CLIENT_ID": CLIENT_ID,
        "GASCAP_PGE_CLIENT_SECRET": CLIENT_SECRET,
        "GASCAP_PGE_THIRD_PARTY_ID": BULK_ID,
        "GASCAP_LOG_LEVEL": "WARNING",
        "GASCAP_DB_CONN_MAX_AGE": "60",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, check=True)
    import django

    django.setup()
    import redis
    from django.conf import settings

    from sandbox.certs import certs_ensure
    from sandbox.config import sandbox_config
    from sandbox.readings import days_in_range, local_date
    from sandbox.scale import scale_expected
    from sandbox.server import SandboxServer
    from sandbox.state import SandboxState
    from tests.support import (
        celery_worker_argv,
        free_port,
        loopback_session,
        pipeline_settled,
        process_stop,
        sandbox_client_env,
    )

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    certs, _ = certs_ensure(directory=BENCH_DIR / "pipeline-certs")
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    notify_url = f"{web_url}/pge/notify/{NOTIFY_TOKEN}/"
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url=notify_url,
        notify_delay=0.5,
        redirect_uris=("http://localhost:8000/consent/callback/",),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        bulk_id=BULK_ID,
        scale_customers=size,
        scale_per_document=per_document,
    )
    sandbox = SandboxServer(SandboxState(), config).start()
    pge_env = sandbox_client_env(sandbox)
    env.update(pge_env)
    for name, value in pge_env.items():
        setattr(settings, name, value)
    _seed(size)

    child_env = {**os.environ, **env}
    # Per-run names: a CI run beside a bench run must not share logs or the var directory.
    log_path = {name: BENCH_DIR / f"pipeline{db_suffix}-{name}.log" for name in ("web", "w1", "w2")}
    logs = {name: open(path, "wb") for name, path in log_path.items()}
    procs: dict[str, subprocess.Popen] = {}
    probe = Probe(notify_url)
    try:
        procs["web"] = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "gascap.wsgi", "-w", "2",
             "-b", f"127.0.0.1:{web_port}", "--log-level", "warning"],
            cwd=REPO, env=child_env, stdout=logs["web"], stderr=subprocess.STDOUT,
        )  # fmt: skip
        for name in ("w1", "w2"):
            procs[name] = subprocess.Popen(
                celery_worker_argv(name=f"bench-{name}"),
                cwd=REPO, env=child_env, stdout=logs[name], stderr=subprocess.STDOUT,
            )  # fmt: skip
        http = loopback_session()
        deadline = time.monotonic() + 60
        while True:
            try:
                http.get(f"{web_url}/healthz", timeout=2)
                ready = all(b" ready." in log_path[n].read_bytes() for n in ("w1", "w2"))
                if ready:
                    break
            except Exception:  # noqa: S110 - not up yet
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs.values()):
                raise SystemExit(f"the stack did not start: see {BENCH_DIR}/pipeline*.log")
            time.sleep(0.2)

        from django.utils import timezone

        from ingest import data_requests
        from ingest.models import Fetch, Notification

        now = timezone.now()
        today = local_date(time.time())
        days = days_in_range(
            int((now - timedelta(days=2)).timestamp()),
            int(now.timestamp()),
            today=today,
            default_days=3,
        )
        probe.start()
        began = time.perf_counter()
        status = data_requests.bulk_data_request(now=now)
        if status != 202:
            raise SystemExit(f"Bulk request answered {status}")
        stop_at = time.monotonic() + timeout
        while True:
            if probe.body is None:
                first = Notification.objects.order_by("pk").first()
                if first is not None:
                    probe.body = bytes(first.body)
            if pipeline_settled(Fetch.objects.filter(kind=Fetch.Kind.BULK)):
                break
            if time.monotonic() > stop_at:
                raise SystemExit(
                    f"not settled in {timeout:.0f} s: "
                    f"{list(Fetch.objects.values('status', 'reason', 'attempts'))[:20]}"
                )
            time.sleep(0.2)
        wall = time.perf_counter() - began
        probe.stopped.set()
        probe.join(timeout=30)
        rss = {"bench_and_sandbox": _peak_rss_mb(os.getpid())}
        web_children = _children(procs["web"].pid)
        rss["web"] = max([_peak_rss_mb(pid) for pid in web_children] or [0.0])
        rss["worker_1"] = _peak_rss_mb(procs["w1"].pid)
        rss["worker_2"] = _peak_rss_mb(procs["w2"].pid)
    finally:
        probe.stopped.set()
        for proc in procs.values():
            process_stop(proc)
        for log in logs.values():
            log.close()
        sandbox.stop()

    fetches = list(Fetch.objects.values_list("kind", "status"))
    not_ingested = [f for f in fetches if f[1] != Fetch.Status.INGESTED]
    stored = _stored()
    expected = scale_expected(count=size, days=days, today=today)
    floor_file = BENCH_DIR / f"pipeline_doc_{per_document}c.xml"
    _write_floor_file(sandbox, floor_file, days, today)
    from bench.espi_bench import floor_parse

    t = time.perf_counter()
    floor_count, _ = floor_parse(floor_file)
    floor_rps = floor_count / (time.perf_counter() - t)
    rps = stored[0] / wall
    return {
        "customers": size,
        "per_document": per_document,
        "days": [str(day) for day in days],
        "readings": stored[0],
        "expected_readings": expected[0],
        "exactly_once": stored == expected,
        "fetches": len(fetches),
        "fetches_not_ingested": not_ingested,
        "wall_s": round(wall, 2),
        "end_to_end_rps": round(rps),
        "floor_rps": round(floor_rps),
        "ratio": round(rps / floor_rps, 3),
        "pge_calls": _pge_calls(sandbox),
        "webhook_p99_ms": probe.p99(),
        "webhook_probes": len(probe.latencies),
        "webhook_statuses": probe.statuses,
        "peak_rss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10000, help="customers")
    parser.add_argument("--per-document", type=int, default=500, help="customers per Bulk doc")
    parser.add_argument("--timeout", type=float, default=3600.0)
    # Another run (a test, a second bench) needs its own database and Redis database: each run
    # drops the one it uses.
    parser.add_argument("--db-suffix", default="_pipeline")
    parser.add_argument("--redis-db", type=int, default=13)
    args = parser.parse_args()
    figures = run(
        size=args.size,
        per_document=args.per_document,
        timeout=args.timeout,
        db_suffix=args.db_suffix,
        redis_db=args.redis_db,
    )
    print(json.dumps(figures))
    if not figures["exactly_once"] or figures["fetches_not_ingested"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
