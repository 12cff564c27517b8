"""App API benchmark (`make bench-api`): through Django's HTTP stack (the test client), on
the 100 customer-year data set of `make bench` (bench/espi_bench.py), against floors
measured in the same run.

    .venv/bin/python bench/api_bench.py [--size small|full]

Measured (p95 of repeated requests with a read key, for one usage point):
- daily: a year of daily totals (`/totals?interval=day`), from the stored rollups;
- readings: one day of 15-minute readings (`/readings`), a different day each request;
- monthly: a year of monthly totals (`/totals?interval=month`);
- export: the usage point-year as CSV (`/export?format=csv`, streamed), rows/s, and the peak
  RSS of a process that does only that.
Floors: the same data read with one raw SQL query each (no ORM, no HTTP), so a ratio says
what the API adds. Targets (issue 13, PostgreSQL, full size): daily, monthly p95 <= 20 ms,
readings p95 <= 15 ms, export >= 100,000 rows/s with peak RSS <= 150 MB.
The database is DATABASE_URL's `<name>_bench` (or var/bench/bench.sqlite3), as `make bench`.
The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import espi_bench

REPO = espi_bench.REPO
sys.path.insert(0, str(REPO))
SUBSCRIPTION = "BENCHSUB0000"
USAGE_POINT = "BENCHUP000000"
YEAR = ("2019-01-01", "2020-01-01")
ROUNDS = {"daily": 60, "readings": 120, "monthly": 60}


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def child_prepare() -> dict[str, object]:
    """An app customer owning the first bench usage point, and a read key."""
    import django

    django.setup()
    from django.utils import timezone

    from api.keys import api_key_create
    from customers.models import Authorization, Customer, SubscriptionUsagePoint
    from ingest.models import UsagePoint
    from ingest.rollups import rollups_rebuild

    customer, _ = Customer.objects.get_or_create(
        external_id="bench-0", defaults={"display_name": "bench"}
    )
    authorization, _ = Authorization.objects.get_or_create(
        subscription_id=SUBSCRIPTION, defaults={"customer": customer, "status": "ACTIVE"}
    )
    SubscriptionUsagePoint.objects.get_or_create(
        authorization=authorization, usage_point_id=USAGE_POINT
    )
    point = UsagePoint.objects.get(usage_point_id=USAGE_POINT)
    if not point.series.first().daily_rollups.exists():  # data imported before rollups existed
        rollups_rebuild()
    _key, plaintext = api_key_create(name="bench", scopes=["read"], now=timezone.now())
    return {"usage_point": point.pk, "key": plaintext}


def _timed(call) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def child_measure(pk: int, key: str) -> dict[str, object]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client()
    headers = {"Authorization": f"Bearer {key}"}
    base = f"/api/v1/usage-points/{pk}"

    def get(path: str) -> None:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.content[:300]

    series_id = None
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM ingest_meterreading WHERE usage_point_id = %s", [pk])
        series_id = cursor.fetchone()[0]

    def floor_daily() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT day, value_sum, readings, covered_seconds, cost_sum"
                " FROM ingest_dailyrollup WHERE series_id = %s ORDER BY day",
                [series_id],
            )
            cursor.fetchall()

    def floor_monthly() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT month, value_sum FROM ingest_monthlyrollup WHERE series_id = %s"
                " ORDER BY month",
                [series_id],
            )
            cursor.fetchall()

    day_starts = [espi_bench.YEAR_START + 86400 * d for d in range(365)]

    def floor_day(start: int) -> None:
        from datetime import UTC, datetime

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT start, duration, value, quality, cost FROM ingest_intervalreading"
                " WHERE meter_reading_id = %s AND start >= %s AND start < %s ORDER BY start",
                [
                    series_id,
                    datetime.fromtimestamp(start, tz=UTC),
                    datetime.fromtimestamp(start + 86400, tz=UTC),
                ],
            )
            cursor.fetchall()

    for _ in range(5):  # warm caches and connections
        get(f"{base}/totals?interval=day&start={YEAR[0]}&end={YEAR[1]}")
        floor_daily()
    figures: dict[str, object] = {}
    daily = [
        _timed(lambda: get(f"{base}/totals?interval=day&start={YEAR[0]}&end={YEAR[1]}"))
        for _ in range(ROUNDS["daily"])
    ]
    daily_floor = [_timed(floor_daily) for _ in range(ROUNDS["daily"])]
    monthly = [
        _timed(lambda: get(f"{base}/totals?interval=month&start={YEAR[0]}&end={YEAR[1]}"))
        for _ in range(ROUNDS["monthly"])
    ]
    monthly_floor = [_timed(floor_monthly) for _ in range(ROUNDS["monthly"])]
    readings, readings_floor = [], []
    for i in range(ROUNDS["readings"]):
        start = day_starts[(i * 37) % 365]
        path = (
            f"{base}/readings?start={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))}"
            f"&end={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start + 86400))}"
        )
        readings.append(_timed(lambda path=path: get(path)))
        readings_floor.append(_timed(lambda start=start: floor_day(start)))
    figures["daily_p95_ms"] = round(p95(daily), 2)
    figures["daily_floor_p95_ms"] = round(p95(daily_floor), 2)
    figures["monthly_p95_ms"] = round(p95(monthly), 2)
    figures["monthly_floor_p95_ms"] = round(p95(monthly_floor), 2)
    figures["readings_p95_ms"] = round(p95(readings), 2)
    figures["readings_floor_p95_ms"] = round(p95(readings_floor), 2)
    figures["daily_median_ms"] = round(statistics.median(daily), 2)
    return figures


def child_export(pk: int, key: str) -> dict[str, object]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client()
    started = time.perf_counter()
    response = client.get(
        f"/api/v1/usage-points/{pk}/export?format=csv",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    rows = lines - 1
    # Floor: the same rows from one raw query, iterated with a server-side cursor.
    started = time.perf_counter()
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.start, r.duration, r.value, r.quality, r.cost FROM ingest_intervalreading r"
            " JOIN ingest_meterreading m ON m.id = r.meter_reading_id"
            " WHERE m.usage_point_id = %s ORDER BY r.meter_reading_id, r.start",
            [pk],
        )
        while batch := cursor.fetchmany(5000):
            count += len(batch)
    floor_elapsed = time.perf_counter() - started
    assert count == rows, (count, rows)
    return {
        "export_rows": rows,
        "export_s": round(elapsed, 3),
        "export_rps": round(rows / elapsed),
        "export_floor_rps": round(count / floor_elapsed),
        "export_rss_mb": round(espi_bench.peak_rss_mb(), 1),
    }


def run(action: str, env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", action, *args],
        env=env, cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"child {action} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(espi_bench.SIZES), default="full")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        action, *rest = args.child
        if action == "prepare":
            print(json.dumps(child_prepare()))
        elif action == "measure":
            print(json.dumps(child_measure(int(rest[0]), rest[1])))
        else:
            print(json.dumps(child_export(int(rest[0]), rest[1])))
        return

    customers = espi_bench.SIZES[args.size]
    espi_bench.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = espi_bench.BENCH_DIR / f"espi_{customers}cy.xml"
    if not path.exists():
        print(f"generating {path.name}…", file=sys.stderr)
        espi_bench.feed_generate(path, customers)
    env = espi_bench.bench_database_env()
    env["GASCAP_API_READINGS_PAGE_SIZE"] = "10000"
    env["DJANGO_ALLOWED_HOSTS"] = "testserver"  # Django's test client
    expected = customers * espi_bench.DAYS * espi_bench.PER_DAY
    print("loading the data set (import_espi)…", file=sys.stderr)
    espi_bench.run_child("reset", path, env)
    loaded = espi_bench.run_child("import", path, env)
    assert loaded["new"] == expected, loaded
    prepared = run("prepare", env)
    pk, key = str(prepared["usage_point"]), str(prepared["key"])
    figures: dict[str, object] = {
        "database": loaded["database"],
        "size": args.size,
        "readings_in_db": expected,
    }
    figures.update(run("measure", env, pk, key))
    figures.update(run("export", env, pk, key))
    figures["readings_ratio"] = round(
        float(figures["readings_p95_ms"]) / max(float(figures["readings_floor_p95_ms"]), 1e-3), 1
    )
    figures["daily_ratio"] = round(
        float(figures["daily_p95_ms"]) / max(float(figures["daily_floor_p95_ms"]), 1e-3), 1
    )
    figures["export_ratio"] = round(
        float(figures["export_rps"]) / float(figures["export_floor_rps"]), 3
    )
    figures["cpus"] = os.cpu_count()
    for name in (
        "daily_p95_ms",
        "readings_p95_ms",
        "monthly_p95_ms",
        "export_rps",
        "export_rss_mb",
    ):
        print(f"{name:>18}: {figures[name]}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
