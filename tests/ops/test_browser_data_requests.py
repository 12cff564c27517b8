"""An operator replays a failed data request in headless Chromium (as tests/ops/test_browser.py
drives the dashboard): the FAILED row shows in the filtered list with its reason, the Replay
action asks for confirmation, and after "Yes, replay" the row is PENDING and its message was
published after the commit — by the admin's request, under the admin's CSP, no console error."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from ingest.models import DataRequest
from tests.builders import authorization_make, customer_make
from tests.ops.test_browser import SCREENSHOTS, browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def failed_request(transactional_db):  # type: ignore[no-untyped-def]
    """Written before the browser starts (Playwright's sync API runs an event loop in this
    thread, where Django refuses database calls)."""
    authorization = authorization_make(
        customer=customer_make(display_name="Ada Lovelace"), subscription_id="SUBX9"
    )
    now = timezone.now()
    row = DataRequest.objects.create(
        kind=DataRequest.Kind.SUBSCRIPTION,
        origin=DataRequest.Origin.DAILY,
        authorization=authorization,
        subscription_id="SUBX9",
        end=now,
        status=DataRequest.Status.FAILED,
        reason="retries_exhausted",
        error="http_503: PG&E answered 503",
        attempts=6,
        created_at=now,
        finished_at=now,
    )
    get_user_model().objects.create_superuser("operator", "op@example.org", PASSWORD)
    return row


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list[object]]]:
    """Messages the live server publishes (its thread shares this process's Celery app)."""
    from gascap.celery import app

    messages: list[tuple[str, list[object]]] = []
    lock = threading.Lock()

    def send_task(name, args=None, kwargs=None, **options):  # type: ignore[no-untyped-def]
        with lock:
            messages.append((name, list(args or [])))

    monkeypatch.setattr(app, "send_task", send_task)
    return messages


def test_an_operator_replays_a_failed_data_request(failed_request, sent, live_server, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")

    page.goto(
        f"{live_server.url}{reverse('admin:ingest_datarequest_changelist')}?status__exact=FAILED"
    )
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "retries_exhausted" in rows.first.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-data-requests.png"), full_page=True)

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "replay")
    page.click("button[name=index]")
    page.wait_for_selector("text=Yes, replay")
    assert sent == []  # nothing queued before the operator confirms
    page.click("input[value='Yes, replay']")
    page.wait_for_selector("ul.messagelist")
    assert "Re-queued 1 of 1 data requests." in page.locator("ul.messagelist").inner_text()
    assert sent == [("ingest.data_request_run", [failed_request.pk])]
    # The row as the operator now sees it (the database is not ours to query here: Playwright's
    # event loop runs in this thread).
    page.goto(
        f"{live_server.url}{reverse('admin:ingest_datarequest_changelist')}?status__exact=PENDING"
    )
    page.wait_for_selector("#result_list")
    pending = page.locator("#result_list tbody tr")
    assert pending.count() == 1
    assert f"/datarequest/{failed_request.pk}/change/" in (
        pending.first.locator("a").first.get_attribute("href") or ""
    )
    assert "retries_exhausted" not in pending.first.inner_text()  # reason cleared
    assert pending.first.locator("td.field-attempts").inner_text().strip() == "0"
    assert problems == [], problems
