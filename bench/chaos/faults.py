"""The fault plan of a run and the injectors.

Kinds (issue 16): Redis stopped 10 s then restarted (SIGTERM, AOF kept), Redis SIGKILLed and
restarted; PostgreSQL `pg_ctl restart -m fast`, PostgreSQL SIGKILLed (postmaster and
backends) then started (crash recovery); a Celery worker process SIGKILLed at a random
moment (the supervisor restarts it); the sandbox answering 503 / slow / resetting
connections in a burst (sandbox/faults.py).

`plan(size, duration)` spreads the faults over the notification phase at seeded-random
moments; the `ci` size has one of each kind, `full` the counts the issue lists.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos.stack import ChaosStack

REDIS_DOWN_SECONDS = 10.0
KILLED_SERVICE_DOWN_SECONDS = 2.0


@dataclass(frozen=True)
class PlannedFault:
    at: float  # seconds after the start of the notification phase
    kind: str


COUNTS = {
    "ci": {
        "redis_restart": 1,
        "redis_kill9": 1,
        "pg_restart": 1,
        "pg_kill9": 1,
        "worker_kill9": 1,
        "sandbox_burst": 1,
    },
    "full": {
        "redis_restart": 3,
        "redis_kill9": 1,
        "pg_restart": 2,
        "pg_kill9": 1,
        "worker_kill9": 10,
        "sandbox_burst": 4,
    },
}
# Faults that take a service away: never two at once, so each one's effect is its own.
EXCLUSIVE = {"redis_restart", "redis_kill9", "pg_restart", "pg_kill9"}


def plan(size: str, duration: float, *, seed: int) -> list[PlannedFault]:
    """The faults of one run, in time order. Service faults get their own slots, evenly
    spaced with jitter; worker kills and sandbox bursts land anywhere (random points)."""
    rng = random.Random(seed)
    counts = COUNTS[size]
    exclusive = [kind for kind in sorted(EXCLUSIVE) for _ in range(counts[kind])]
    rng.shuffle(exclusive)
    slot = duration / (len(exclusive) + 1)
    planned = [
        PlannedFault(at=slot * (i + 0.5) + rng.uniform(0, slot * 0.5), kind=kind)
        for i, kind in enumerate(exclusive)
    ]
    for kind in ("worker_kill9", "sandbox_burst"):
        planned += [
            PlannedFault(at=rng.uniform(duration * 0.05, duration * 0.95), kind=kind)
            for _ in range(counts[kind])
        ]
    return sorted(planned, key=lambda f: f.at)


def soak_plan(minutes: float, *, every_minutes: float, seed: int) -> list[PlannedFault]:
    """A fault every `every_minutes`, cycling through the kinds (soak runs)."""
    kinds = ["worker_kill9", "sandbox_burst", "redis_restart", "pg_restart", "redis_kill9"]
    rng = random.Random(seed)
    planned = []
    at = every_minutes * 60
    index = 0
    while at < minutes * 60 - 30:
        planned.append(PlannedFault(at=at + rng.uniform(-10, 10), kind=kinds[index % len(kinds)]))
        index += 1
        at += every_minutes * 60
    return planned


class Injector:
    """Applies planned faults to a stack; each returns a one-line description."""

    def __init__(self, stack: ChaosStack, *, seed: int) -> None:
        self.stack = stack
        self.rng = random.Random(seed)

    def apply(self, kind: str) -> str:
        handler: Callable[[], str] = getattr(self, kind)
        return handler()

    def redis_restart(self) -> str:
        self.stack.redis.stop()
        time.sleep(REDIS_DOWN_SECONDS)  # the outage itself: nothing to wait for
        self.stack.redis.start()
        return f"Redis stopped {REDIS_DOWN_SECONDS:.0f} s and restarted"

    def redis_kill9(self) -> str:
        self.stack.redis.kill9()
        time.sleep(KILLED_SERVICE_DOWN_SECONDS)  # the time a supervisor takes to restart it
        self.stack.redis.start()
        return "Redis SIGKILLed and restarted from its AOF"

    def pg_restart(self) -> str:
        self.stack.pg.restart_fast()
        return "PostgreSQL restarted (pg_ctl restart -m fast)"

    def pg_kill9(self) -> str:
        self.stack.pg.kill9()
        time.sleep(KILLED_SERVICE_DOWN_SECONDS)
        self.stack.pg.start()
        return "PostgreSQL SIGKILLed and started (crash recovery)"

    def worker_kill9(self) -> str:
        name = self.rng.choice(["worker-a", "worker-b"])
        self.stack.kill9(name)
        return f"{name} SIGKILLed"

    def sandbox_burst(self) -> str:
        from sandbox.faults import Fault

        state = self.stack.sandbox.state
        state.fault_add(Fault(kind="http_503", times=4))
        state.fault_add(Fault(kind="slow", times=2, seconds=3.0))
        state.fault_add(Fault(kind="reset", times=3))
        state.fault_add(Fault(kind="reset", endpoint="token", times=1))
        return "sandbox burst: 4 x 503, 2 x slow 3 s, 3 x reset (+1 on the token endpoint)"
