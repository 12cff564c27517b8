"""The chaos and soak driver: start the stack, send notifications at a fixed rate for several
consents while the faults of the plan are injected, wait for the pipeline to settle, check.

    .venv/bin/python -m bench.chaos.run --size ci|full      # make chaos [SIZE=ci]
    .venv/bin/python -m bench.chaos.run --soak-minutes 30   # make soak MINUTES=30

Chaos passes when every notification answered 2xx was ingested, the readings equal the golden
set (count and checksum), nothing was written twice (no extra reading, no revision row: the
sandbox never changes a value), nothing is still open 5 minutes after the last fault, and no
token is in any log. Soak adds: each process's RSS must not grow more than 20 % after the
first 5 minutes, its open file descriptors and the database sessions stay flat.

Prints a table; the last line is one JSON object. Exit status 0 only when it passed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos import checks, faults
from bench.chaos.stack import CUSTOMERS, NOTIFY_TOKEN, ChaosStack, wait_for

SIZES = {
    # notification phase seconds, notifications per second, distinct days per consent
    "ci": (70.0, 1.0, 4),
    "full": (360.0, 1.5, 10),
}
STUCK_AFTER_SECONDS = 300.0
SOAK_WARMUP_MINUTES = 5
SOAK_RSS_GROWTH = 0.20
SOAK_FD_SLACK = 10


@dataclass
class Record:
    sent: int = 0
    answered_2xx: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    windows: dict[tuple[str, int], str] = field(default_factory=dict)
    faults: list[tuple[float, str]] = field(default_factory=list)
    last_fault_end: float = 0.0
    harness_errors: list[str] = field(default_factory=list)


class RecordingTokens:
    """Every token the sandbox issues, for the log scan (rotation forgets old ones)."""

    def __init__(self, state: Any) -> None:
        self.seen: set[str] = set()
        issue, client = state.tokens_issue, state.client_token_issue

        def tokens_issue(**kwargs: Any) -> tuple[str, str]:
            access, refresh = issue(**kwargs)
            self.seen |= {access, refresh}
            return access, refresh

        def client_token_issue() -> str:
            token = client()
            self.seen.add(token)
            return token

        state.tokens_issue, state.client_token_issue = tokens_issue, client_token_issue


def send_notifications(
    stack: ChaosStack, record: Record, *, seconds: float, rate: float, days: int, stop: Any
) -> None:
    """POST BatchLists at `rate` per second for `seconds`, cycling over consents and days."""
    from tests.support import batchlist, loopback_session

    http = loopback_session()
    endpoint = f"{stack.web_url}/pge/notify/{NOTIFY_TOKEN}/"
    start = time.monotonic()
    index = 0
    while not stop.is_set():
        due = start + index / rate
        if due - start > seconds:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        key = CUSTOMERS[index % len(CUSTOMERS)]
        sid = stack.subscriptions[key]
        day = 1 + (index // len(CUSTOMERS)) % days
        url = stack.resource_url(subscription_id=sid, day=day)
        record.windows.setdefault((sid, day), url)
        record.sent += 1
        try:
            answer = http.post(
                endpoint, data=batchlist(url), headers={"Content-Type": "text/xml"}, timeout=10
            )
            outcome = str(answer.status_code)
        except Exception as exc:
            outcome = type(exc).__name__
        if outcome.startswith("2"):
            record.answered_2xx.append(url)
        else:
            record.refused[outcome] = record.refused.get(outcome, 0) + 1
        index += 1


def inject(stack: ChaosStack, record: Record, plan: list[faults.PlannedFault], t0: float) -> None:
    injector = faults.Injector(stack, seed=len(plan))
    for planned in plan:
        time.sleep(max(0.0, t0 + planned.at - time.monotonic()))
        try:
            what = injector.apply(planned.kind)
        except Exception as exc:  # a harness failure fails the run, loudly
            what = f"FAILED to inject {planned.kind}: {exc}"
            record.harness_errors.append(what)
        now = time.monotonic() - t0
        record.faults.append((now, what))
        record.last_fault_end = time.monotonic()
        print(f"  {now:7.1f} s  fault: {what}", flush=True)


def settled() -> bool:
    from django.db import OperationalError, close_old_connections, connection

    from tests.support import pipeline_settled

    close_old_connections()
    try:
        return pipeline_settled()
    except OperationalError:
        return False
    finally:
        connection.close()


def sample(stack: ChaosStack, samples: list[dict[str, Any]], t0: float) -> None:
    from bench.chaos.stack import CHAOS_DB

    row: dict[str, Any] = {"minute": round((time.monotonic() - t0) / 60, 1), "procs": {}}
    for name, pid in stack.pids().items():
        found = checks.process_sample(pid)
        if found is not None:
            row["procs"][name] = {"pid": pid, "rss_kib": found[0], "fds": found[1]}
    row["db_sessions"] = stack.pg.connections(CHAOS_DB)
    samples.append(row)


def soak_verdict(samples: list[dict[str, Any]]) -> list[str]:
    """Problems found in the per-minute samples after the warm-up (same PID only: a process
    the faults restarted starts a new baseline)."""
    problems: list[str] = []
    after = [s for s in samples if s["minute"] >= SOAK_WARMUP_MINUTES]
    if len(after) < 2:
        return [f"soak too short: {len(after)} samples after {SOAK_WARMUP_MINUTES} minutes"]
    base: dict[str, dict[str, int]] = {}
    for row in after:
        for name, proc in row["procs"].items():
            first = base.get(name)
            if first is None or first["pid"] != proc["pid"]:
                base[name] = proc
                continue
            if proc["rss_kib"] > first["rss_kib"] * (1 + SOAK_RSS_GROWTH):
                problems.append(f"{name} RSS {first['rss_kib']} -> {proc['rss_kib']} KiB")
            if proc["fds"] > first["fds"] + SOAK_FD_SLACK:
                problems.append(f"{name} fds {first['fds']} -> {proc['fds']}")
    sessions = [s["db_sessions"] for s in after if s["db_sessions"] >= 0]
    if sessions and max(sessions) > sessions[0] + SOAK_FD_SLACK:
        problems.append(f"database sessions {sessions[0]} -> {max(sessions)}")
    return sorted(set(problems))


def run(args: argparse.Namespace) -> int:
    wall0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gascap-chaos-"))
    work.chmod(0o755)
    soak = args.soak_minutes is not None
    if soak:
        seconds, rate, days = args.soak_minutes * 60, args.rate or 0.5, 6
        plan = faults.soak_plan(args.soak_minutes, every_minutes=args.fault_every, seed=args.seed)
    else:
        seconds, rate, days = SIZES[args.size]
        rate = args.rate or rate
        plan = faults.plan(args.size, seconds, seed=args.seed)
    stack = ChaosStack(work)
    record = Record()
    samples: list[dict[str, Any]] = []
    try:
        print(f"chaos: starting the stack under {work}", flush=True)
        stack.start()
        tokens = RecordingTokens(stack.sandbox.state)
        from django.conf import settings

        tokens.seen |= {settings.GASCAP_PGE_CLIENT_SECRET}
        from customers.models import Authorization

        for row in Authorization.objects.all():
            tokens.seen |= {t for t in (row.access_token, row.refresh_token) if t}
        mode = f"soak {args.soak_minutes} min" if soak else f"size {args.size}"
        print(f"chaos: {mode}, {rate}/s for {seconds:.0f} s, {len(plan)} faults", flush=True)
        t0 = time.monotonic()
        stop = threading.Event()
        sender = threading.Thread(
            target=send_notifications,
            args=(stack, record),
            kwargs={"seconds": seconds, "rate": rate, "days": days, "stop": stop},
        )
        injector = threading.Thread(target=inject, args=(stack, record, plan, t0))
        sender.start()
        injector.start()
        next_sample = t0
        while sender.is_alive() or injector.is_alive():
            if soak and time.monotonic() >= next_sample:
                sample(stack, samples, t0)
                next_sample += 60
            time.sleep(1)
        record.last_fault_end = record.last_fault_end or time.monotonic()
        print(f"chaos: {record.sent} sent; waiting for the pipeline to settle", flush=True)
        deadline = record.last_fault_end + STUCK_AFTER_SECONDS - time.monotonic()
        wait_for(settled, timeout=max(deadline, 30.0), every=2.0)
        from django.db import close_old_connections

        close_old_connections()
        golden = checks.golden_rows(stack, record.windows)
        outcome = checks.outcome_measure(
            answered_urls=record.answered_2xx,
            golden=golden,
            tokens=tokens.seen,
            logs=stack.logs(),
        )
        soak_problems = soak_verdict(samples) if soak else []
    finally:
        stack.stop()
    wall = time.monotonic() - wall0
    unexpected = {n: s.unexpected_exits for n, s in stack.supervised.items() if s.unexpected_exits}
    passed = (
        outcome.lost == 0
        and outcome.duplicated == 0
        and outcome.stuck == 0
        and outcome.token_leaks == 0
        and outcome.checksum_equal
        and not soak_problems
        and not record.harness_errors
    )
    lines = [
        ("notifications sent", record.sent),
        ("answered 2xx", len(record.answered_2xx)),
        ("refused / unanswered", json.dumps(record.refused)),
        ("faults injected", len(record.faults)),
        ("readings (golden)", f"{outcome.readings} ({outcome.golden})"),
        ("checksum equal", outcome.checksum_equal),
        ("lost", outcome.lost),
        ("duplicated", outcome.duplicated),
        ("stuck", outcome.stuck),
        ("tokens in logs", outcome.token_leaks),
        ("unexpected exits", json.dumps(unexpected)),
        ("wall s", round(wall, 1)),
    ]
    print()
    for name, value in lines:
        print(f"  {name:<22} {value}")
    for detail in record.harness_errors + outcome.details + soak_problems:
        print(f"  ! {detail}")
    if soak:
        for row in samples:
            procs = " ".join(
                f"{n}={p['rss_kib'] // 1024}M/{p['fds']}fd" for n, p in row["procs"].items()
            )
            print(f"  min {row['minute']:5.1f}  db={row['db_sessions']}  {procs}")
    if args.keep or not passed:
        print(f"  logs kept under {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "mode": "soak" if soak else "chaos",
        "size": None if soak else args.size,
        "minutes": args.soak_minutes,
        "notifications": record.sent,
        "answered_2xx": len(record.answered_2xx),
        "faults": len(record.faults),
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "stuck": outcome.stuck,
        "token_leaks": outcome.token_leaks,
        "readings": outcome.readings,
        "golden": outcome.golden,
        "checksum_equal": outcome.checksum_equal,
        "unexpected_exits": unexpected,
        "soak_problems": soak_problems,
        "passed": passed,
        "wall_s": round(wall, 1),
    }
    print(json.dumps(summary))
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--soak-minutes", type=float, default=None)
    parser.add_argument("--fault-every", type=float, default=3.0, help="soak: minutes")
    parser.add_argument("--rate", type=float, default=None, help="notifications per second")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
