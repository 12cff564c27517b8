"""Beat in production: the schedules exist after every `migrate`, beat shows it is alive, and
one check says whether both hold (beat's container health check, `manage.py beat_health`).

- `schedules_on_migrate` (a post_migrate receiver, connected in `gascap.apps`): `migrate`
  creates the missing schedules with `gascap.schedules.schedules_ensure`. Existing rows are
  kept as the operator edited them (disabled included); a deleted one comes back at the next
  migrate, so the way to stop a schedule is to disable it.
- `HeartbeatScheduler`: django-celery-beat's DatabaseScheduler that writes the time to
  `GASCAP_BEAT_HEARTBEAT_FILE` after every tick. A tick runs at least every 5 s (the
  scheduler's max interval), so a file older than `GASCAP_BEAT_HEARTBEAT_MAX_AGE` means beat's
  loop is stuck or gone. A file, not a Redis key: the check runs in beat's own container and
  must not depend on the broker being up to tell that beat itself is alive.
- `beat_problems(now=...)`: what is wrong with beat (stale or absent heartbeat, missing
  schedules), empty when healthy.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)


def schedules_missing(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Names of the schedules gascap needs (gascap.schedules.SCHEDULES) that have no row."""
    # Imported here, not above: this module is beat's scheduler class, which celery may load
    # before Django's apps are ready; the beat tables' models need them.
    from django_celery_beat.models import PeriodicTask

    from gascap.schedules import SCHEDULES

    present = set(
        PeriodicTask.objects.using(using)
        .filter(name__in=[spec.name for spec in SCHEDULES])
        .values_list("name", flat=True)
    )
    return [spec.name for spec in SCHEDULES if spec.name not in present]


def schedule_tables_exist(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask._meta.db_table in connections[using].introspection.table_names()


def schedules_on_migrate(
    sender: Any, *, app_config: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
) -> None:
    """post_migrate: create the missing schedules once per `migrate` (on the ingest app's
    signal; every app's tables exist by the time any post_migrate is sent)."""
    if app_config.label != "ingest" or not settings.GASCAP_SCHEDULES_ON_MIGRATE:
        return
    if using != DEFAULT_DB_ALIAS or not schedule_tables_exist(using=using):
        return  # `migrate <app>` that stopped before django_celery_beat: next migrate does it
    from gascap.schedules import schedules_ensure  # (models: see schedules_missing)

    created = [name for name, was_created in schedules_ensure() if was_created]
    stdout = kwargs.get("stdout")
    if created and stdout is not None and kwargs.get("verbosity", 1) >= 1:
        stdout.write(f"  Created {len(created)} beat schedule(s): {', '.join(created)}\n")


# --- heartbeat ----------------------------------------------------------------------------


def heartbeat_path() -> Path:
    return Path(settings.GASCAP_BEAT_HEARTBEAT_FILE)


def heartbeat_write(*, now: float) -> None:
    """Replace the heartbeat file atomically with `now` (epoch seconds)."""
    path = heartbeat_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".beat-heartbeat-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(f"{now:.3f}\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def heartbeat_age(*, now: float) -> float | None:
    """Seconds since beat's last tick, or None when there is no readable heartbeat."""
    try:
        written = float(heartbeat_path().read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return max(0.0, now - written)


class HeartbeatScheduler(DatabaseScheduler):
    """DatabaseScheduler plus the heartbeat: written after each completed tick, so a loop
    stuck in a tick (a database that never answers) lets the file go stale."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = super().tick(*args, **kwargs)
        try:
            heartbeat_write(now=time.time())
        except OSError:
            logger.warning("beat: cannot write the heartbeat %s", heartbeat_path(), exc_info=True)
        return interval


def beat_problems(*, now: float) -> list[str]:
    """Why beat is not healthy: no heartbeat, a stale one, missing schedules. Empty: healthy."""
    problems = []
    age = heartbeat_age(now=now)
    max_age = settings.GASCAP_BEAT_HEARTBEAT_MAX_AGE
    if age is None:
        problems.append(f"no beat heartbeat at {heartbeat_path()}")
    elif age > max_age:
        problems.append(f"beat heartbeat is {age:.0f} s old (max {max_age} s)")
    missing = schedules_missing()
    if missing:
        problems.append(
            "missing schedules: " + ", ".join(missing) + " (run `manage.py migrate` or "
            "`manage.py ensure_schedules`)"
        )
    return problems
