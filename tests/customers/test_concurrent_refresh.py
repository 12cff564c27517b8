"""20 workers find the access token expired at once: exactly one refresh request
(docs/reliability.md test 54, threads). Needs PostgreSQL: the row lock is SELECT ... FOR UPDATE."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection

from customers.models import Authorization
from customers.tokens import access_token_for_subscription
from tests.customers.conftest import (
    NOW,
    REFRESH_TOKEN,
    SUBSCRIPTION_ID,
    TOKEN_URL,
    authorization_make,
    token_json,
)

WORKERS = 20


class RotatingTokenEndpoint:
    """PG&E's token endpoint that rotates refresh tokens and revokes the family on reuse."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current_refresh = REFRESH_TOKEN
        self.requests = 0
        self.reuse_detected = 0
        self.issued = 0

    def __call__(self, request):
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        with self.lock:
            self.requests += 1
            if form.get("refresh_token") != self.current_refresh:
                self.reuse_detected += 1
                self.current_refresh = None  # the whole family is revoked
                return 400, {}, json.dumps({"error": "invalid_grant"})
            self.issued += 1
            self.current_refresh = f"test-refresh-rotated-{self.issued}"
            body = token_json(
                access_token=f"test-access-rotated-{self.issued}",
                refresh_token=self.current_refresh,
            )
        time.sleep(0.3)  # a slow PG&E widens the race window
        return 200, {"Content-Type": "application/json"}, body


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_refreshes_make_one_token_request(fake_pge, pge_http, customer):
    authorization_make(customer=customer, expires_at=NOW - timedelta(seconds=5))
    endpoint = RotatingTokenEndpoint()
    pge_http.add_callback("POST", TOKEN_URL, callback=endpoint)
    barrier = threading.Barrier(WORKERS)

    def worker(_: int) -> tuple[str, float]:
        try:
            barrier.wait(timeout=10)
            started = time.monotonic()
            token = access_token_for_subscription(subscription_id=SUBSCRIPTION_ID, now=NOW)
            return token, time.monotonic() - started
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(worker, range(WORKERS)))

    assert endpoint.requests == 1
    assert endpoint.reuse_detected == 0
    assert {token for token, _ in results} == {"test-access-rotated-1"}
    stored = Authorization.objects.get()
    assert stored.status == Authorization.Status.ACTIVE
    assert stored.refresh_token == "test-refresh-rotated-1"
    # The lock is held for about one token request, far below the request timeout.
    slowest = max(elapsed for _, elapsed in results)
    assert slowest < fake_pge.GASCAP_PGE_READ_TIMEOUT
    print(f"20 concurrent refreshes: 1 request, slowest caller {slowest:.2f}s")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_client_token_requests_make_one(fake_pge, pge_http):
    from customers.tokens import client_access_token
    from tests.customers.conftest import CLIENT_TOKEN_JSON

    calls = []
    lock = threading.Lock()

    def endpoint(request):
        with lock:
            calls.append(1)
        time.sleep(0.3)
        return 200, {"Content-Type": "application/json"}, CLIENT_TOKEN_JSON

    pge_http.add_callback("POST", TOKEN_URL, callback=endpoint)
    barrier = threading.Barrier(WORKERS)

    def worker(_: int) -> str:
        try:
            barrier.wait(timeout=10)
            return client_access_token(now=NOW)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        tokens = set(pool.map(worker, range(WORKERS)))
    assert len(calls) == 1
    assert tokens == {"test-client-token-CCCC3333"}
