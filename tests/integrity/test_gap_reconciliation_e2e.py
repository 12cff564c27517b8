"""docs/reliability.md test 48 end to end: the sandbox (a local PG&E over real mutual TLS) serves a
consented customer; gascap imports a window with one day left out (the notification for that
day "never came"), the gap report (`series_missing_days`) flags exactly that day, the gap
audit creates one synchronous UsagePoint fetch for exactly that Pacific day, running it fills
the day from the sandbox, the gap report is then empty, and the readings equal a full fetch
of the same window (count and checksum).

The day left out is the 2025 fall-back day (25 hourly intervals per series), and the customer
has delivered and received series, so the audit's day arithmetic is checked where it is
easiest to get wrong. The fetches run through `ingest.fetches.fetch_run` in this process (the
task body, without a worker); the broker publish is recorded instead of sent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from celery import current_app
from cryptography.fernet import Fernet

from ingest import fetches, gap_audit, publish, selectors
from ingest.models import Fetch, MeterReading
from tests.integrity.conftest import checksum, readings_wipe, stored_readings
from tests.support import sandbox_consent

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PACIFIC = ZoneInfo("America/Los_Angeles")
# The sandbox's fixed clock: 2025-11-20 noon in California, after the 11-02 fall-back.
NOW = datetime(2025, 11, 20, 20, 0, tzinfo=UTC)
FIRST_DAY = date(2025, 10, 30)
GAP_DAY = date(2025, 11, 2)
AUDIT_DAYS = 20  # the audit covers 10-30 .. 11-18 (it ends the day before yesterday)
LAST_AUDITED = date(2025, 11, 18)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PACIFIC)


@pytest.fixture
def consented(tmp_path, settings, monkeypatch):
    """The sandbox over mTLS, gascap's PG&E settings pointing at it, and one consented
    customer (the sandbox's solar demo home: hourly delivered and received series)."""
    from sandbox.certs import certs_ensure
    from sandbox.config import sandbox_config
    from sandbox.demo import customer_by_key
    from sandbox.server import SandboxServer
    from sandbox.state import FakeClock, SandboxState

    certs, _ = certs_ensure(directory=tmp_path / "certs")
    config = sandbox_config(
        cert_dir=certs.directory,
        notify_url="http://127.0.0.1:9/unused/",  # synchronous fetches only: no notification
        notify_delay=0.1,
        redirect_uris=("http://localhost:8000/consent/callback/",),
        client_id="sandbox-client",
        client_secret="sandbox-secret",
        bulk_id="99999",
    )
    sandbox = SandboxServer(SandboxState(clock=FakeClock(NOW.timestamp())), config).start()
    settings.GASCAP_FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.GASCAP_PGE_API_BASE = sandbox.api_base
    settings.GASCAP_PGE_TOKEN_URL = f"{sandbox.base_url}/datacustodian/oauth/v2/token"
    settings.GASCAP_PGE_CA_BUNDLE = str(certs.ca)
    settings.GASCAP_PGE_CLIENT_CERT = str(certs.client_cert)
    settings.GASCAP_PGE_CLIENT_KEY = str(certs.client_key)
    settings.GASCAP_PGE_CLIENT_ID = "sandbox-client"
    settings.GASCAP_PGE_CLIENT_SECRET = "sandbox-secret"
    settings.GASCAP_PGE_THIRD_PARTY_ID = "99999"
    settings.GASCAP_PGE_RATE_LIMIT_PER_SECOND = 0
    settings.GASCAP_LOCAL_TIME_ZONE = "America/Los_Angeles"

    queued: list[int] = []

    def send_task(name, args=None, **_options):  # type: ignore[no-untyped-def]
        # Only fetch runs are recorded: the audit publishes nothing else.
        assert name == publish.FETCH_RUN
        queued.append(args[0])

    monkeypatch.setattr(current_app, "send_task", send_task)

    customer = customer_by_key("solar")
    sid = customer.subscription_id
    sandbox_consent(sandbox, customer_key="solar", display_name="Sandbox solar (integrity test)")
    try:
        yield sid, customer.usage_points[0].usage_point_id, queued
    finally:
        sandbox.stop()


def _fetch_window(sid: str, upid: str, first: date, after: date) -> list[Fetch]:
    created = gap_audit.usage_point_fetches_create(
        subscription_id=sid,
        usage_point_id=upid,
        start=_midnight(first),
        end=_midnight(after),
        now=NOW,
    )
    for fetch in created:
        result = fetches.fetch_run(fetch_id=fetch.pk, now=NOW)
        fetch.refresh_from_db()
        assert result.status == Fetch.Status.INGESTED, (fetch.reason, fetch.error)
    return created


def _missing() -> dict[str, list[date]]:
    return {
        series.meter_reading_id: selectors.series_missing_days(
            meter_reading=series, first_day=FIRST_DAY, last_day=LAST_AUDITED
        )
        for series in MeterReading.objects.select_related("reading_type")
    }


def test_a_left_out_day_is_flagged_fetched_and_filled(consented):
    sid, upid, queued = consented
    after_last = NOW.astimezone(PACIFIC).date()  # the sandbox publishes up to yesterday

    # Everything but the fall-back day, as two windows around it.
    _fetch_window(sid, upid, FIRST_DAY, GAP_DAY)
    _fetch_window(sid, upid, GAP_DAY + timedelta(days=1), after_last)
    partial = stored_readings()
    assert partial
    series_ids = {mr for _up, mr, _s, _d in partial}
    assert len(series_ids) == 2  # delivered and received
    assert not any(
        datetime.fromtimestamp(start, PACIFIC).date() == GAP_DAY for _u, _m, start, _d in partial
    )

    # The gap report flags exactly that day, for both series.
    assert _missing() == {key: [GAP_DAY] for key in series_ids}

    # The audit asks for exactly that Pacific day (25 hours), once, and queues it.
    queued.clear()
    created = gap_audit.gap_audit(now=NOW, days=AUDIT_DAYS)
    assert len(created) == 1
    gap_fetch = created[0]
    query = parse_qs(urlsplit(gap_fetch.url).query)
    assert int(query["published-min"][0]) == int(_midnight(GAP_DAY).timestamp())
    assert int(query["published-max"][0]) == int(_midnight(date(2025, 11, 3)).timestamp())
    assert f"/Subscription/{sid}/UsagePoint/{upid}?" in gap_fetch.url
    assert queued == [gap_fetch.pk]

    # The queued fetch fills the day from the sandbox; the gap report is then empty.
    assert fetches.fetch_run(fetch_id=gap_fetch.pk, now=NOW).status == Fetch.Status.INGESTED
    gap_fetch.refresh_from_db()
    assert gap_fetch.readings_new == 2 * 25  # two series, 25 hourly intervals each
    assert gap_fetch.readings_updated == 0
    assert _missing() == {key: [] for key in series_ids}
    queued.clear()
    assert gap_audit.gap_audit(now=NOW, days=AUDIT_DAYS) == []
    assert queued == []
    reconciled = stored_readings()

    # A full fetch of the same window, from nothing, gives the same readings.
    readings_wipe()
    assert stored_readings() == {}
    _fetch_window(sid, upid, FIRST_DAY, after_last)
    full = stored_readings()
    assert len(reconciled) == len(full)
    assert checksum(reconciled) == checksum(full)
    assert reconciled == full
