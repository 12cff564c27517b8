"""What a run must end with, measured: the golden readings, lost / duplicated / stuck work,
tokens in logs, and per-process resource samples (soak).

Golden set: after the run the same documents (the notified Batch/Subscription windows, which
the sandbox serves deterministically) are fetched once more without faults and imported with
`manage.py import_espi` into an empty database of the same cluster; its readings (series
href, start, duration, value) are compared with the chaos database's.

`python -m bench.chaos.checks digest` prints the current DATABASE_URL's readings as JSON
(how the golden database is read from another process).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import REPO

Row = tuple[str, str, int, int]


def readings_rows() -> list[Row]:
    """Every stored reading of the configured database, in key order."""
    from ingest.models import IntervalReading

    rows = IntervalReading.objects.order_by("meter_reading__href", "start", "duration")
    return [
        (href, start.isoformat(), duration, value)
        for href, start, duration, value in rows.values_list(
            "meter_reading__href", "start", "duration", "value"
        ).iterator()
    ]


def digest(rows: list[Row]) -> str:
    sha = hashlib.sha256()
    for row in rows:
        sha.update("|".join(map(str, row)).encode() + b"\n")
    return sha.hexdigest()


def golden_rows(stack: Any, urls: dict[tuple[str, int], str]) -> list[Row]:
    """Fetch each window's document once more (no faults) and import them into the golden
    database in a separate process; its readings."""
    import requests

    from bench.chaos.stack import GOLDEN_DB

    stack.sandbox.state.faults_clear()
    directory = stack.work / "golden"
    directory.mkdir(exist_ok=True)
    session = requests.Session()
    session.trust_env = False
    session.verify = stack.env["GASCAP_PGE_CA_BUNDLE"]
    session.cert = (stack.env["GASCAP_PGE_CLIENT_CERT"], stack.env["GASCAP_PGE_CLIENT_KEY"])
    tokens = {}
    files = []
    for (sid, day), url in sorted(urls.items()):
        if sid not in tokens:
            tokens[sid], _ = stack.sandbox.state.tokens_issue(subscription_id=sid)
        answer = session.get(url, headers={"Authorization": f"Bearer {tokens[sid]}"}, timeout=60)
        answer.raise_for_status()
        path = directory / f"{sid}-{day}.xml"
        path.write_bytes(answer.content)
        files.append(str(path))
    env = {**os.environ, **stack.env, "DATABASE_URL": stack.pg.url(GOLDEN_DB)}
    manage = [sys.executable, "manage.py"]
    for args in (["migrate", "--noinput", "-v", "0"], ["import_espi", "-v", "0", *files]):
        subprocess.run([*manage, *args], cwd=REPO, env=env, check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-m", "bench.chaos.checks", "digest"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [tuple(row) for row in json.loads(out)]  # type: ignore[misc]


@dataclass
class Outcome:
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    token_leaks: int = 0
    readings: int = 0
    golden: int = 0
    checksum_equal: bool = False
    details: list[str] = field(default_factory=list)


def outcome_measure(
    *, answered_urls: list[str], golden: list[Row], tokens: set[str], logs: list[Path]
) -> Outcome:
    """Compare the chaos database with the golden set and the driver's record."""
    from ingest.models import Fetch, Notification, ReadingRevision

    result = Outcome()
    ingested = set(Fetch.objects.filter(status=Fetch.Status.INGESTED).values_list("url", flat=True))
    not_done = [url for url in answered_urls if url not in ingested]
    result.details += [f"answered 2xx, never ingested: {url}" for url in not_done[:10]]
    rows = readings_rows()
    result.readings, result.golden = len(rows), len(golden)
    chaos_set, golden_set = set(rows), set(golden)
    missing, extra = golden_set - chaos_set, chaos_set - golden_set
    result.lost = len(not_done) + len(missing)
    revisions = ReadingRevision.objects.count()
    result.duplicated = len(extra) + revisions
    result.checksum_equal = digest(rows) == digest(sorted(golden))
    if missing:
        result.details.append(f"{len(missing)} golden readings missing, e.g. {sorted(missing)[0]}")
    if extra:
        result.details.append(f"{len(extra)} readings not in the golden set")
    if revisions:
        result.details.append(f"{revisions} revision rows although no value changed")
    waiting = Notification.objects.filter(status__in=Notification.STUCK_STATUSES).count()
    open_fetches = Fetch.objects.filter(status__in=Fetch.OPEN_STATUSES).count()
    result.stuck = waiting + open_fetches
    failed = Fetch.objects.exclude(status__in=[*Fetch.OPEN_STATUSES, Fetch.Status.INGESTED])
    for status, reason in failed.values_list("status", "reason")[:10]:
        result.details.append(f"fetch {status}: {reason[:200]}")
    result.token_leaks = tokens_in_logs(tokens, logs)
    return result


def tokens_in_logs(tokens: set[str], logs: list[Path]) -> int:
    """How many (token, log file) pairs have the token in the file."""
    found = 0
    for path in logs:
        text = path.read_bytes()
        found += sum(1 for token in tokens if token and token.encode() in text)
    return found


def process_sample(pid: int) -> tuple[int, int] | None:
    """(RSS in KiB, open file descriptors) of `pid`, None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    lines = status.splitlines()
    rss = next((int(line.split()[1]) for line in lines if line.startswith("VmRSS")), 0)
    return rss, fds


if __name__ == "__main__" and sys.argv[1:] == ["digest"]:
    import django

    django.setup()
    print(json.dumps(readings_rows()))
