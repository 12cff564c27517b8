"""Beat in production (issue 11): `migrate` creates the missing schedules, `/healthz` and a
system check report missing ones, and `manage.py beat_health` (beat's container health check)
fails on a stale heartbeat or a missing schedule."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from gascap.beat import beat_problems, heartbeat_age, heartbeat_write, schedules_missing
from gascap.schedules import SCHEDULES

NAMES = [spec.name for spec in SCHEDULES]


@pytest.fixture
def heartbeat(settings, tmp_path):
    settings.GASCAP_BEAT_HEARTBEAT_FILE = str(tmp_path / "beat.heartbeat")
    settings.GASCAP_BEAT_HEARTBEAT_MAX_AGE = 60
    return settings


@pytest.mark.django_db
def test_migrate_creates_every_missing_schedule_and_keeps_edited_ones(settings):
    settings.GASCAP_SCHEDULES_ON_MIGRATE = True
    assert schedules_missing() == NAMES  # the test settings leave the test database without
    out = StringIO()
    call_command("migrate", verbosity=1, stdout=out)
    assert schedules_missing() == []
    assert f"Created {len(SCHEDULES)} beat schedule(s)" in out.getvalue()
    PeriodicTask.objects.filter(name=NAMES[0]).update(enabled=False)
    PeriodicTask.objects.filter(name=NAMES[1]).delete()
    call_command("migrate", verbosity=0)
    assert schedules_missing() == []
    assert PeriodicTask.objects.get(name=NAMES[0]).enabled is False  # the operator's edit kept
    assert PeriodicTask.objects.filter(name__in=NAMES).count() == len(NAMES)


@pytest.mark.django_db
def test_migrate_leaves_schedules_alone_when_turned_off(settings):
    settings.GASCAP_SCHEDULES_ON_MIGRATE = False
    call_command("migrate", verbosity=0)
    assert schedules_missing() == NAMES


@pytest.mark.django_db
def test_healthz_reports_missing_schedules_without_failing_the_webhook(client):
    call_command("ensure_schedules", stdout=StringIO())
    assert client.get("/healthz").json()["schedules"] == "ok"
    PeriodicTask.objects.filter(name=NAMES[2]).delete()
    response = client.get("/healthz")
    assert response.status_code == 200  # database and broker decide; beat's check fails
    assert response.json()["schedules"] == "missing 1"


@pytest.mark.django_db
def test_system_check_warns_about_missing_schedules():
    call_command("ensure_schedules", stdout=StringIO())
    assert not [m for m in checks.run_checks(databases=["default"]) if m.id == "gascap.W010"]
    PeriodicTask.objects.filter(name=NAMES[3]).delete()
    warnings = [m for m in checks.run_checks(databases=["default"]) if m.id == "gascap.W010"]
    assert len(warnings) == 1 and NAMES[3] in warnings[0].msg


@pytest.mark.django_db
def test_beat_health_wants_a_fresh_heartbeat_and_every_schedule(heartbeat):
    call_command("ensure_schedules", stdout=StringIO())
    with pytest.raises(CommandError, match="no beat heartbeat"):
        call_command("beat_health", stdout=StringIO())
    heartbeat_write(now=time.time())
    out = StringIO()
    call_command("beat_health", stdout=out)
    assert out.getvalue().strip() == "beat ok"
    heartbeat_write(now=time.time() - 61)
    with pytest.raises(CommandError, match=r"heartbeat is 6\d s old \(max 60 s\)"):
        call_command("beat_health", stdout=StringIO())
    heartbeat_write(now=time.time())
    PeriodicTask.objects.filter(name=NAMES[4]).delete()
    with pytest.raises(CommandError, match="missing schedules: " + NAMES[4]):
        call_command("beat_health", stdout=StringIO())


def test_heartbeat_age_of_an_unreadable_file_is_none(heartbeat, tmp_path):
    assert heartbeat_age(now=time.time()) is None
    (tmp_path / "beat.heartbeat").write_text("not a time")
    assert heartbeat_age(now=time.time()) is None


# django-celery-beat closes the database connection between ticks: not inside a test
# transaction.
@pytest.mark.django_db(transaction=True)
def test_heartbeat_scheduler_writes_the_heartbeat_each_tick(heartbeat):
    from gascap.beat import HeartbeatScheduler
    from gascap.celery import app

    scheduler = HeartbeatScheduler(app=app, lazy=True)
    scheduler.setup_schedule()
    before = time.time()
    interval = scheduler.tick()
    assert 0 <= interval <= 5  # the loop comes back at least every 5 s
    age = heartbeat_age(now=time.time())
    assert age is not None and age <= time.time() - before
    assert beat_problems(now=time.time()) == [
        "missing schedules: " + ", ".join(NAMES) + " (run `manage.py migrate` or "
        "`manage.py ensure_schedules`)"
    ]
