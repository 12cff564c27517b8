"""The dashboard and a usage point page in headless Chromium (Debian's `chromium`, driven by
Playwright): both render with data and no console error, under the admin's CSP; the usage
point chart holds one mark per day with data and marks the missing days. Screenshots go to
`GASCAP_SCREENSHOT_DIR` (default var/screenshots), which CI keeps."""

from __future__ import annotations

import io
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from customers.models import AuthorizationStatus
from ingest.models import Fetch, Notification, UsagePoint
from ingest.readings import document_import
from tests.builders import authorization_make, customer_make
from tests.ingest.test_readings import feed

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("GASCAP_SCREENSHOT_DIR", REPO / "var" / "screenshots"))

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("GASCAP_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def _data(now: datetime) -> tuple[UsagePoint, int, int]:
    """60 local days ending yesterday: delivered on all but 5, received on 20 of them."""
    zone = ZoneInfo("America/Los_Angeles")
    today = now.astimezone(zone).date()
    delivered_days = 0
    days_with_data: set[object] = set()
    for back in range(60, 0, -1):
        day = today - timedelta(days=back)
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        if back % 13 == 0:  # a few missing days
            continue
        values = [400 + (h * 37 + back * 11) % 900 for h in range(24)]
        document_import(
            source=io.BytesIO(feed(values=values, start=midnight)), source_label="t", now=now
        )
        delivered_days += 1
        days_with_data.add(day)
        if back <= 20:
            solar = [0] * 8 + [300 + h * 20 for h in range(8)] + [0] * 8
            document_import(
                source=io.BytesIO(feed(values=solar, start=midnight, flow_direction=19, mr="MRX2")),
                source_label="t",
                now=now,
            )
    for i in range(7):
        Fetch.objects.create(
            url=f"https://pge/{i}",
            url_sha256=str(i),
            status=Fetch.Status.INGESTED if i % 3 else Fetch.Status.FAILED,
            created_at=now - timedelta(days=i),
            finished_at=now - timedelta(days=i),
            readings_new=24 * (i + 1),
        )
        Notification.objects.create(
            status=Notification.Status.PROCESSED,
            received_at=now - timedelta(days=i, hours=1),
            body=b"",
            sha256=f"n{i}",
        )
    customer = customer_make(display_name="Ada Lovelace")
    authorization_make(
        customer=customer, subscription_id="SUBX1", status=AuthorizationStatus.ACTIVE
    )
    authorization_make(
        customer=customer_make(display_name="Grace Hopper"),
        subscription_id="SUB-LOST",
        status=AuthorizationStatus.NEEDS_RECONSENT,
        last_error="invalid_grant",
    )
    return UsagePoint.objects.get(), len(days_with_data), 60 - len(days_with_data)


@pytest.fixture
def seeded(transactional_db, settings, tmp_path):  # type: ignore[no-untyped-def]
    """The data, written before the browser starts (Playwright's sync API runs an event loop
    in this thread, where Django refuses database calls), and a client certificate for the
    dashboard's days-left figure (the sandbox's, as `make run` has)."""
    from sandbox.certs import certs_ensure

    certs, _ = certs_ensure(directory=tmp_path / "certs")
    settings.GASCAP_PGE_CLIENT_CERT = str(certs.client_cert)
    now = timezone.now()
    point, days_with_data, missing = _data(now)
    get_user_model().objects.create_superuser(
        "operator", "op@example.org", "a-long-test-password-1"
    )
    return now, point, days_with_data, missing


def test_dashboard_and_usage_point_page_render_with_data(seeded, live_server, browser) -> None:  # type: ignore[no-untyped-def]
    now, point, days_with_data, missing_in_sample = seeded
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    usage_point_url = reverse("admin:ingest_usagepoint_change", args=[point.pk])
    usage_point_url = reverse("admin:ingest_usagepoint_change", args=[point.pk])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#gascap-dashboard")

    # The dashboard: every section, the readings chart with a bar per day, linked figures.
    for section in (
        "notifications",
        "fetches",
        "readings",
        "consents",
        "attention",
        "pge",
        "queues",
        "daily",
        "certificate",
    ):
        assert page.locator(f"#dash-{section}").is_visible(), section
    assert page.locator("#dash-readings rect.mark").count() == 7
    assert "processed" in page.locator("#dash-notifications").inner_text()
    failed_link = page.locator("#dash-fetches a", has_text="failed").first.get_attribute("href")
    assert "status__exact=FAILED" in failed_link and "created_at__gte=" in failed_link
    assert "Grace Hopper" in page.locator("#dash-attention").inner_text()
    assert "day(s) left" in page.locator("#dash-certificate").inner_text()
    dashboard_png = SCREENSHOTS / "admin-dashboard.png"
    page.screenshot(path=str(dashboard_png), full_page=True)

    # Following a figure opens the filtered list behind it.
    page.click("#dash-fetches a >> text=failed")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 3  # i = 0, 3, 6

    page.goto(f"{live_server.url}{usage_point_url}")
    page.wait_for_selector(".gascap-usage-chart svg")
    marks = page.locator(".gascap-usage-chart rect.mark")
    assert marks.count() == days_with_data
    received = page.locator(".gascap-usage-chart rect.received")
    assert received.count() == 20 - sum(1 for b in range(1, 21) if b % 13 == 0)
    missing = page.locator(".gascap-usage-chart rect.missing").count()
    window_days = page.locator(".gascap-usage-chart svg").get_attribute("aria-label")
    assert missing >= missing_in_sample  # the sample's gaps plus the days before it
    assert f"{days_with_data} of " in page.locator(".gascap-usage-chart + p").inner_text()
    assert window_days and "daily totals from" in window_days
    usage_png = SCREENSHOTS / "admin-usage-point.png"
    page.locator(".gascap-usage-chart").screenshot(path=str(SCREENSHOTS / "admin-usage-chart.png"))
    page.screenshot(path=str(usage_png), full_page=True)

    assert problems == [], problems
    print(f"screenshots: {dashboard_png} {usage_png}")
    assert datetime.now(UTC) - now < timedelta(minutes=5)
