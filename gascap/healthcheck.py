"""`python -m gascap.healthcheck URL`: the container health check of `web` (docker-compose.yml).

It asks gunicorn for `/healthz` with a Host header taken from `DJANGO_ALLOWED_HOSTS`, as the
proxy does for real requests, so the check passes with production's real host names while
Django's host validation stays exactly as strict for every path, `/healthz` included. (The
alternatives were weaker: adding `localhost` to ALLOWED_HOSTS accepts it on every path, and a
middleware exempting `/healthz` from validation puts a hole in it.)

Standard library only, no Django start-up: it runs every 15 s. Exit 0 when the answer is 200.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe_host(allowed_hosts: str) -> str:
    """A host name Django accepts: the first concrete entry of DJANGO_ALLOWED_HOSTS (a leading
    dot, "any subdomain", also matches the bare domain); `localhost` when there is none."""
    for entry in (h.strip() for h in allowed_hosts.split(",")):
        if entry and entry != "*":
            return entry.lstrip(".")
    return "localhost"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m gascap.healthcheck URL", file=sys.stderr)
        return 2
    host = probe_host(os.environ.get("DJANGO_ALLOWED_HOSTS", ""))
    request = urllib.request.Request(argv[1], headers={"Host": host})  # noqa: S310 (our URL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no env proxies
    try:
        with opener.open(request, timeout=5) as answer:
            body = answer.read(2000).decode(errors="replace")
            status = answer.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(2000).decode(errors="replace"), exc.code
    except OSError as exc:
        print(f"unhealthy: {argv[1]} unreachable: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {argv[1]} (Host {host}) answered {status}: {body}", file=sys.stderr)
        return 1
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
