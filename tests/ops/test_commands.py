"""`manage.py status` and `manage.py import_espi`'s output at each verbosity, on a terminal and
in a pipe."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from customers.models import AuthorizationStatus
from ingest.models import Fetch, IntervalReading, Notification
from tests.builders import authorization_make, customer_make

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gba_sdk_daily_365days_cost.xml"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(*args: str, stdout: io.StringIO | None = None) -> tuple[str, str, int]:
    out, err = stdout or io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return out.getvalue(), err.getvalue(), code


def test_import_espi_one_line_per_file_in_a_pipe_and_progress_on_a_terminal() -> None:
    out, _, _ = _run("import_espi", str(FIXTURE))
    stored = IntervalReading.objects.count()
    assert stored > 300
    assert out.splitlines() == [
        f"{FIXTURE}: readings: {stored} new, 0 updated, 0 unchanged; usage points: 1"
    ]

    tty, _, _ = _run("import_espi", str(FIXTURE), stdout=Terminal())
    progress = tty.split("\n")[0].split("\r")[-1]
    size = FIXTURE.stat().st_size
    assert progress.startswith(f"{FIXTURE}: 100.0% ")
    assert f"~{stored:,} readings" in progress  # every IntervalReading counted while parsing
    assert "/s · ETA 0 s" in progress
    assert f"{size / 1024:.1f} KiB of {size / 1024:.1f} KiB" in progress
    assert tty.split("\n")[1].endswith(f"{stored} unchanged; usage points: 1")


def test_import_espi_verbosity() -> None:
    quiet, _, _ = _run("import_espi", str(FIXTURE), "-v", "0", stdout=Terminal())
    assert quiet == ""
    loud, _, _ = _run("import_espi", str(FIXTURE), "-v", "2")
    assert len(loud.splitlines()) == 2 and " in " in loud.splitlines()[1] and "/s)" in loud


def test_status_summary_and_exit_code() -> None:
    now = timezone.now()
    out, _, code = _run("status")
    assert code == 0 and "needs action   nothing" in out
    assert len(out.splitlines()) <= 24  # one screen
    quiet, _, code = _run("status", "-v", "0")
    assert (quiet, code) == ("", 0)

    customer = customer_make(display_name="Ada Lovelace")
    authorization_make(
        customer=customer,
        subscription_id="SUB-7",
        status=AuthorizationStatus.NEEDS_RECONSENT,
        last_error="invalid_grant",
    )
    Notification.objects.create(
        status=Notification.Status.PROCESSED, received_at=now, body=b"", sha256="x"
    )
    Fetch.objects.create(
        url="u",
        url_sha256="u",
        status=Fetch.Status.INGESTED,
        created_at=now - timedelta(hours=1),
        finished_at=now,
        readings_new=96,
    )
    out, _, code = _run("status")
    assert "notifications  processed 1" in out
    assert "fetches        ingested 1" in out
    assert "(total 96)" in out
    assert "needs reconsent 1" in out
    assert "needs action   1 consent(s) needs reconsent" in out
    assert "Ada Lovelace" not in out
    detailed, _, _ = _run("status", "-v", "2")
    assert "Ada Lovelace (subscription SUB-7) invalid_grant" in detailed
    quiet, _, code = _run("status", "-v", "0")
    assert (quiet, code) == ("", 1)
