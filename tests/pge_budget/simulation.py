"""A day of PG&E calls for many consents, on a fake clock, through the real budget.

Every call goes through a real `PgeClient` with the real `PgeBudgetGate` and its SQLite
counter store; only the HTTP session is a stub (it answers like PG&E: 200 token JSON, 202
for data requests, 200 feeds). Pacing is the fake clock moving 1 s per call (PG&E's ~1/s).
The work is what gascap does in a day (README, "PG&E call budget"):

- the Authorization poll (05:15 Pacific) and the daily data request (06:30), per
  subscription or one Bulk request as `ingest.budget_plan.daily_request_mode` picks;
- each data request's notified fetch 60 s later (NOTIFIED), Bulk notifications naming two
  Bulk URLs;
- new consents over the day: the code exchange, the client token and the Authorization GET
  (CONSENT), then the first request for two years of history in 30-day windows (25 requests,
  SCHEDULED) and their 25 notified fetches;
- the gap audit (09:45): a share of consents missing a day, each a token refresh + a
  synchronous UsagePoint fetch (SCHEDULED);
- a few operator revocations (DELETE, NOTIFIED).

Customer tokens are refreshed lazily (an hour-old token is stale), the client token is cached
for its hour. A call the budget refuses is retried by its job when the window it waits for
opens (as the tasks do), and counted as a wait.
"""

from __future__ import annotations

import heapq
import io
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

import requests
import urllib3

from gascap.pge.client import PgeClient
from gascap.pge.config import PgeConfig
from gascap.pge.gate import BudgetExhausted, CallKind, Priority, call_priority
from gascap.pge_budget.budget import PGE_DAY_ZONE, PgeBudgetGate, day_window, hour_window
from gascap.pge_budget.counters import FileCounterStore

API = "https://api.pge.example/GreenButtonConnect/espi/1_1/resource/"
TOKEN_URL = "https://api.pge.example/datacustodian/oauth/v2/token"
FEED = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>x</id></feed>'
AUTH_ENTRY = (
    b'<entry xmlns="http://www.w3.org/2005/Atom"><id>a</id><content>'
    b'<Authorization xmlns="http://naesb.org/espi"><status>1</status>'
    b"<resourceURI>" + API.encode() + b"Batch/Subscription/1</resourceURI>"
    b"</Authorization></content></entry>"
)
HISTORY_WINDOWS = 25  # 730 days in 30-day windows
BULK_URLS_PER_NOTIFICATION = 2  # PG&E's sample BatchList names two


class StubSession(requests.Session):
    """Answers like PG&E without a network (the budget, not HTTP, is under test here)."""

    def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def, override]
        status, body, ctype = 200, FEED, "application/atom+xml"
        if url.startswith(TOKEN_URL):
            grant = (kwargs.get("data") or {}).get("grant_type")
            key = "client_access_token" if grant == "client_credentials" else "access_token"
            body = (
                b'{"%s": "sim-token", "refresh_token": "sim-refresh", "expires_in": 3600, '
                b'"resourceURI": "%sBatch/Subscription/1"}' % (key.encode(), API.encode())
            )
            ctype = "application/json"
        elif "correlationID" not in url and "/Batch/" in url and "/UsagePoint/" not in url:
            status, body = 202, b""  # an asynchronous data request
        elif "/Authorization" in url:
            body = b"" if method == "DELETE" else AUTH_ENTRY
        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = ctype
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), preload_content=False, status=status
        )
        response.url = url
        return response


@dataclass
class SimClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def pace(self) -> None:
        self.now += timedelta(seconds=1)  # PG&E's ~1 request/s


@dataclass(order=True)
class _Job:
    at: datetime
    seq: int
    name: str = field(compare=False)
    priority: Priority = field(compare=False)
    steps: list[Callable[[], None]] = field(compare=False)


@dataclass
class DayReport:
    consents: int
    mode: str
    calls_by_kind: dict[str, int]
    calls_by_hour: list[int]
    day_total: int
    waits: dict[str, int]
    unfinished: dict[str, int]
    consent_callbacks: int
    consent_callbacks_waited: int

    def as_dict(self) -> dict[str, object]:
        return {
            "consents": self.consents,
            "mode": self.mode,
            "day_total": self.day_total,
            "max_per_hour": max(self.calls_by_hour),
            "calls_by_kind": self.calls_by_kind,
            "waits": self.waits,
            "unfinished": self.unfinished,
            "consent_callbacks": self.consent_callbacks,
            "consent_callbacks_waited": self.consent_callbacks_waited,
        }


def simulate_day(
    *,
    consents: int,
    mode: str,
    tmp_path: Path,
    start: datetime,
    new_consents: int = 50,
    gap_share: float = 0.01,
    revocations: int = 5,
) -> DayReport:
    """Run one PG&E day (17:00 to 17:00 Pacific) from `start` (a PG&E day's start)."""
    clock = SimClock(start)
    store = FileCounterStore(tmp_path / f"sim-{mode}-{consents}.sqlite3")
    store.clear()
    gate = PgeBudgetGate(store=store, clock=clock, pace=clock.pace)
    for name in ("crt", "key"):
        (tmp_path / f"sim.{name}").write_text("not used by the stub session\n")
    config = PgeConfig(
        api_base=API,
        token_url=TOKEN_URL,
        authorize_url="https://sharemydata.pge.example/myAuthorization",
        client_id="sim",
        client_secret="sim-secret",
        client_cert=str(tmp_path / "sim.crt"),
        client_key=str(tmp_path / "sim.key"),
    )
    client = PgeClient(config, session=StubSession(), gate=gate)
    seq = itertools.count()
    queue: list[_Job] = []
    client_token_until = [start - timedelta(seconds=1)]
    customer_token_until: dict[int, datetime] = {}
    waits: Counter[str] = Counter()
    callbacks_waited = [0]

    def at_local(hour: int, minute: int) -> datetime:
        day = start.astimezone(PGE_DAY_ZONE).date() + timedelta(days=1)
        return datetime.combine(day, time(hour, minute), tzinfo=PGE_DAY_ZONE)

    def add(at: datetime, name: str, priority: Priority, steps: list[Callable[[], None]]) -> None:
        heapq.heappush(queue, _Job(at, next(seq), name, priority, steps))

    def client_token() -> None:
        if clock.now >= client_token_until[0]:
            client.client_credentials(now=clock.now)
            client_token_until[0] = clock.now + timedelta(seconds=3600 - 300)

    def customer_token(n: int) -> None:
        if clock.now >= customer_token_until.get(n, start):
            client.refresh(refresh_token="sim-refresh", now=clock.now)
            customer_token_until[n] = clock.now + timedelta(seconds=3600 - 300)

    def fetch(url: str) -> None:
        client.fetch(url=url, access_token="sim-token").close()

    def subscription_request(n: int) -> list[Callable[[], None]]:
        def request() -> None:
            client.request_subscription_async(
                subscription_id=str(n), published_min=0, published_max=1, access_token="t"
            )
            url = f"{API}Batch/Subscription/{n}?correlationID=sim-{n}-{next(seq)}"
            add(clock.now + timedelta(seconds=60), "fetch", Priority.NOTIFIED, [lambda: fetch(url)])

        return [lambda: customer_token(n), request]

    def bulk_request() -> None:
        client.request_bulk(bulk_id="50098", client_token="t")
        for i in range(BULK_URLS_PER_NOTIFICATION):
            url = f"{API}Batch/Bulk/50098?correlationID=sim-bulk-{i}"
            add(
                clock.now + timedelta(seconds=60),
                "fetch",
                Priority.NOTIFIED,
                [lambda u=url: fetch(u)],
            )

    def poll() -> None:
        client.authorizations_list(client_token="t")

    add(at_local(5, 15), "authorizations_poll", Priority.SCHEDULED, [client_token, poll])
    if mode == "bulk":
        add(at_local(6, 30), "bulk_request", Priority.SCHEDULED, [client_token, bulk_request])
    else:
        for n in range(consents):
            add(at_local(6, 30), "data_request", Priority.SCHEDULED, subscription_request(n))
    for g in range(int(consents * gap_share)):
        n = g * int(1 / gap_share)
        url = f"{API}Batch/Subscription/{n}/UsagePoint/1?published-min=0&published-max=1"
        add(
            at_local(9, 45),
            "gap_fill",
            Priority.SCHEDULED,
            [lambda n=n: customer_token(n), lambda u=url: fetch(u)],
        )
    for r in range(revocations):
        add(
            start + timedelta(hours=2 + 4 * r),
            "revocation",
            Priority.NOTIFIED,
            [
                client_token,
                lambda r=r: client.authorization_delete(subscription_id=str(r), client_token="t"),
            ],
        )
    for c in range(new_consents):
        n = consents + c
        at = start + timedelta(seconds=(c + 0.5) * 86400 / new_consents)

        def consent(n: int = n) -> None:
            client.exchange_code(
                code="sim-code", redirect_uri="https://x.example/cb", now=clock.now
            )
            customer_token_until[n] = clock.now + timedelta(seconds=3600 - 300)
            for _window in range(HISTORY_WINDOWS):
                add(clock.now, "history_request", Priority.SCHEDULED, subscription_request(n))

        def authorization(n: int = n) -> None:
            client.authorization_get(subscription_id=str(n), client_token="t")

        add(at, "consent_callback", Priority.CONSENT, [consent, client_token, authorization])

    end = day_window(start).end
    while queue and queue[0].at < end:
        job = heapq.heappop(queue)
        clock.now = max(clock.now, job.at)
        with call_priority(job.priority):
            while job.steps:
                try:
                    job.steps[0]()
                except BudgetExhausted as exc:
                    waits[job.name] += 1
                    if job.name == "consent_callback":
                        callbacks_waited[0] += 1
                    add(exc.retry_at, job.name, job.priority, job.steps)
                    break
                job.steps.pop(0)
    by_kind = store.read(day_window(start).key)
    hours = []
    cursor = start
    while cursor < end:
        hours.append(store.read(hour_window(cursor).key).get("_total", 0))
        cursor += timedelta(hours=1)
    return DayReport(
        consents=consents,
        mode=mode,
        calls_by_kind={str(k): by_kind.get(str(k), 0) for k in CallKind if by_kind.get(str(k))},
        calls_by_hour=hours,
        day_total=by_kind.get("_total", 0),
        waits=dict(waits),
        unfinished=dict(Counter(job.name for job in queue)),
        consent_callbacks=new_consents,
        consent_callbacks_waited=callbacks_waited[0],
    )
