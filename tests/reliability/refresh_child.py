"""A worker process's token lookup, run as `python -m tests.reliability.refresh_child SID DIR N`
by the multi-process refresh tests: it says it is ready (`DIR/ready-N`), waits for `DIR/go`
so every process asks at once, asks for the subscription's access token and writes the
token's sha256 (never the token) to `DIR/result-N`, or `error:<reason>`."""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path


def main(subscription_id: str, directory: Path, index: str) -> None:
    import django

    django.setup()
    from django.utils import timezone

    from customers.tokens import AuthorizationUnavailable, access_token_for_subscription

    (directory / f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while not (directory / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.01)
    try:
        token = access_token_for_subscription(subscription_id=subscription_id, now=timezone.now())
    except AuthorizationUnavailable as exc:
        result = f"error:{exc.reason}"
    else:
        result = hashlib.sha256(token.encode()).hexdigest()
    (directory / f"result-{index}").write_text(result)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3])
