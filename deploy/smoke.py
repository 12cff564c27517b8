"""The production smoke (`make smoke`, run by `.ci/run`): the docker compose deployment as
processes, since no image can be pulled here.

Each service's `command`, `environment` and healthcheck `test` are read from
`docker-compose.yml`, its `env_file` is `.env.example` with the empty secrets filled with test
values, and the code runs from the build context `.dockerignore` lets through (deploy/context.py),
as the image would. CI's PostgreSQL and Redis stand in for the `postgres` and `redis` services,
Debian's nginx for the `proxy` image, and the sandbox (a local PG&E over mutual TLS) for PG&E.

The translation from containers to loopback is this table and nothing else
(`Translation.pairs`):
- the fixed addresses of `proxy_web` (gunicorn's bind, the proxy's address that gunicorn
  trusts) -> 127.0.0.1, gunicorn's port 8000 -> a free port;
- nginx's `listen 443` / `listen 80` and the proxy health check's `127.0.0.1:80` -> free ports;
- each bind mount's container path (/run/secrets/pge, /etc/nginx/tls) -> the host side in a
  scratch folder; the mounted nginx.conf -> `nginx -c` on a translated copy, its pid file there;
- compose's `$$` -> `$`; `HOSTNAME` -> this machine's name (the worker's node name);
- `pg_isready` / `redis-cli` get `-h`/`-p` of CI's servers; `/app` is the unpacked context.

Checks (each prints PASS/FAIL; the last line is "N passed, M failed"): the build context holds
no secret path; migrate leaves every schedule in place; each health check command exits 0;
beat dispatches a schedule that a worker runs; a notification sent through the proxy is stored
and fetched from the sandbox; /admin/ is 404 and the operators' path wants a one-time code;
three slowloris connections through the proxy leave the webhook answering in < 1 s (and the
same three sent to gunicorn directly do block it); a spoofed X-Forwarded-For does not reach
Django as the client address; host validation still refuses unknown hosts; bodies over 256 KiB
stop at the proxy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # `python deploy/smoke.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.smoke_checks import run_checks
from deploy.smoke_env import Deployment

ROOT = Path(__file__).resolve().parent.parent


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, func, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        try:
            detail = func(*args, **kwargs)
        except Exception as exc:
            self.failed.append(name)
            print(f"FAIL {name}: {exc}", flush=True)
            if not isinstance(exc, AssertionError):
                traceback.print_exc()
            return None
        self.passed += 1
        note = f": {detail}" if isinstance(detail, str) else ""
        print(f"PASS {name} ({time.monotonic() - started:.1f} s){note}")
        sys.stdout.flush()
        return detail


def main() -> int:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url.startswith("redis"):
        print("the smoke needs DATABASE_URL (PostgreSQL) and REDIS_URL (Redis)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="gascap-smoke-"))
    os.chmod(work, 0o755)  # nginx's workers (nobody) read the TLS files
    results = Results()
    started = time.monotonic()
    deployment = Deployment(
        root=ROOT,
        work=work,
        database_url=database_url,
        redis_url=redis_url,
        token=secrets.token_urlsafe(24),
    )
    try:
        run_checks(deployment, results)
    except Exception as exc:
        results.failed.append("setup")
        print(f"FAIL setup: {exc}", flush=True)
        traceback.print_exc()
    finally:
        deployment.stop()
        if results.failed:
            deployment.show_logs()
        deployment.drop()
        if os.environ.get("GASCAP_SMOKE_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"smoke took {time.monotonic() - started:.0f} s")
    print(f"{results.passed} passed, {len(results.failed)} failed")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
