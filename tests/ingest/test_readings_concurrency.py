"""Overlapping imports of the same series at the same time (PostgreSQL, real transactions):
no deadlock, no duplicate, no lost reading (docs/reliability.md test 46)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from ingest.models import IntervalReading, MeterReading
from ingest.readings import document_import
from tests.ingest.test_readings import DAY, NOW, feed


@pytest.fixture(autouse=True)
def published():
    """Nothing here publishes tasks (overrides the ingest conftest's broker recorder)."""
    return None


ROUNDS = 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_concurrent_imports_neither_deadlock_nor_duplicate():
    # Each round, two deliveries of new intervals overlapping by 12 hours start together;
    # the overlap carries different values in each, so whichever commits last wins there.
    document_import(source=feed(values=[1], start=DAY - 3600), source_label="seed", now=NOW)
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def worker(offset_hours: int, base: int, label: str) -> None:
        try:
            for round_ in range(ROUNDS):
                start = DAY + round_ * 86400 * 2 + offset_hours * 3600
                data = feed(values=[base + i for i in range(24)], start=start)
                barrier.wait()
                document_import(source=data, source_label=label, now=NOW)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(0, 100, "a")),
        threading.Thread(target=worker, args=(12, 500, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert MeterReading.objects.count() == 1
    starts = list(IntervalReading.objects.values_list("start", flat=True))
    assert len(starts) == len(set(starts)) == 1 + ROUNDS * 36
