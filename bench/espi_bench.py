"""ESPI import benchmark: the parser's floor, `import_espi` throughput and peak RSS.

    .venv/bin/python bench/espi_bench.py [--size small|medium|full] [--peers]

Generates PG&E-shaped Bulk feeds under var/bench/ (15-minute readings, one IntervalBlock per
day, ReadingQuality 19 and tou on every reading, ns0/ns1 prefixes and xsi:type attributes as
PG&E writes them): `small` is 1 customer-year (35,040 readings), `medium` 10 (350,400: enough
for several chunks of the overlapped merge, quick to iterate on), `full` 100 customer-years
(3.5 million readings, about 950 MB). Then, in the same run:

- floor: the bare streaming parse of the same file with the standard library
  (`xml.etree.ElementTree.iterparse`), extracting (start, duration, value) of every reading;
- import: `ingest.readings.document_import` (what `import_espi` runs) in a fresh child
  process, on an empty reading table: readings/s and the child's peak RSS (`VmHWM`);
- re-import of the unchanged file: readings/s and the rows it wrote (PostgreSQL: the
  transaction's `pg_stat_xact_user_tables` counters; SQLite: `total_changes()` minus the
  rows of the temporary load tables).

The database is DATABASE_URL's server with a separate `<name>_bench` database (created and
migrated here, so a real database is never emptied), or var/bench/bench.sqlite3 without it.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from xml.etree.ElementTree import iterparse

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "var" / "bench"
SIZES = {"small": 1, "medium": 10, "full": 100}  # customer-years
DAYS = 365
PER_DAY = 96  # 15-minute readings
YEAR_START = 1546329600  # 2019-01-01 08:00Z, a Pacific midnight
ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
API = "https://api.pge.com/GreenButtonConnect/espi/1_1/resource/"
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


# --- feed generation ------------------------------------------------------------------------


def _entry(self_href: str, up: str, related: list[str], content: str) -> str:
    links = (
        f'<ns1:link href="{up}" rel="up" {XSI} xsi:type="ns1:linkType"/>'
        f'<ns1:link href="{self_href}" rel="self" {XSI} xsi:type="ns1:linkType"/>'
    )
    links += "".join(
        f'<ns1:link href="{h}" rel="related" {XSI} xsi:type="ns1:linkType"/>' for h in related
    )
    return (
        f'<ns1:entry xmlns:ns1="{ATOM}"><ns1:id {XSI} xsi:type="ns1:idType">'
        f"urn:uuid:00000000-0000-4000-8000-{abs(hash(self_href)) % 10**12:012d}</ns1:id>{links}"
        f'<ns1:title type="text">Green Button Data File</ns1:title>'
        f"<ns1:published>2020-01-02T04:04:52.753Z</ns1:published>"
        f"<ns1:updated>2020-01-02T04:04:52.753Z</ns1:updated>"
        f'<ns1:content {XSI} xsi:type="ns1:contentType">{content}</ns1:content></ns1:entry>'
    )


def feed_generate(path: Path, customers: int) -> int:
    """Write a Bulk feed of `customers` usage points x one year of 15-minute readings."""
    rt_href = f"{API}ReadingType/QkVOQ0gtNzI6bnVsbDo5MDA6MQ=="
    count = 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(f'<ns1:feed xmlns:ns0="{ESPI}" xmlns:ns1="{ATOM}">')
        out.write(f'<ns1:id xmlns:ns1="{ATOM}">urn:uuid:bench</ns1:id>')
        out.write(
            _entry(
                rt_href,
                f"{API}ReadingType",
                [],
                f'<ns0:ReadingType xmlns:ns0="{ESPI}"><ns0:accumulationBehaviour>4'
                "</ns0:accumulationBehaviour><ns0:commodity>1</ns0:commodity>"
                "<ns0:dataQualifier>12</ns0:dataQualifier><ns0:defaultQuality>17"
                "</ns0:defaultQuality><ns0:flowDirection>1</ns0:flowDirection>"
                "<ns0:intervalLength>900</ns0:intervalLength><ns0:kind>12</ns0:kind>"
                "<ns0:powerOfTenMultiplier>-3</ns0:powerOfTenMultiplier>"
                "<ns0:timeAttribute>0</ns0:timeAttribute><ns0:uom>72</ns0:uom>"
                "<ns0:measuringPeriod>2</ns0:measuringPeriod></ns0:ReadingType>",
            )
        )
        for c in range(customers):
            up = f"{API}Subscription/BENCHSUB{c:04d}/UsagePoint/BENCHUP{c:06d}"
            mr = f"{up}/MeterReading/QkVOQ0gtNzI6bnVsbDo5MDA6MQ==OjE="
            out.write(
                _entry(
                    up,
                    f"{API}Subscription/BENCHSUB{c:04d}/UsagePoint",
                    [f"{up}/MeterReading", f"{up}/UsageSummary"],
                    f'<ns0:UsagePoint xmlns:ns0="{ESPI}"><ns0:ServiceCategory><ns0:kind>0'
                    "</ns0:kind></ns0:ServiceCategory></ns0:UsagePoint>",
                )
            )
            out.write(
                _entry(
                    mr,
                    f"{up}/MeterReading",
                    [f"{mr}/IntervalBlock", rt_href],
                    f'<ns0:MeterReading xmlns:ns0="{ESPI}"/>',
                )
            )
            for day in range(DAYS):
                start = YEAR_START + day * 86400
                readings = []
                for i in range(PER_DAY):
                    # A plausible load shape: base + daily swing + per-customer offset.
                    value = 180000 + ((i * 7919 + day * 104729 + c * 15485863) % 420000)
                    readings.append(
                        "<ns0:IntervalReading><ns0:ReadingQuality><ns0:quality>19"
                        "</ns0:quality></ns0:ReadingQuality><ns0:timePeriod><ns0:duration>900"
                        f"</ns0:duration><ns0:start>{start + 900 * i}</ns0:start>"
                        f"</ns0:timePeriod><ns0:value>{value}</ns0:value>"
                        f"<ns0:tou>{1 + (i // 32)}</ns0:tou></ns0:IntervalReading>"
                    )
                count += PER_DAY
                out.write(
                    _entry(
                        f"{mr}/IntervalBlock/{start}",
                        f"{mr}/IntervalBlock",
                        [],
                        f'<ns0:IntervalBlock xmlns:ns0="{ESPI}"><ns0:interval><ns0:duration>86400'
                        f"</ns0:duration><ns0:start>{start}</ns0:start></ns0:interval>"
                        + "".join(readings)
                        + "</ns0:IntervalBlock>",
                    )
                )
        out.write("</ns1:feed>")
    tmp.replace(path)
    return count


# --- the floor: standard-library streaming parse ---------------------------------------------


def floor_parse(path: Path) -> tuple[int, int]:
    """(readings, sum of values): the leanest stdlib streaming parse of the same file.

    End events only (start events would slow the floor and flatter our ratio); each
    IntervalReading gives (start, duration, value) and is cleared, each entry is cleared.
    """
    reading_tag = f"{{{ESPI}}}IntervalReading"
    entry_tag = f"{{{ATOM}}}entry"
    start_path = f"{{{ESPI}}}timePeriod/{{{ESPI}}}start"
    duration_path = f"{{{ESPI}}}timePeriod/{{{ESPI}}}duration"
    value_tag = f"{{{ESPI}}}value"
    count = total = 0
    for _event, element in iterparse(path, events=("end",)):
        tag = element.tag
        if tag == reading_tag:
            start = int(element.findtext(start_path))
            duration = int(element.findtext(duration_path))
            value = int(element.findtext(value_tag))
            count += 1
            total += value + (start - start) + (duration - duration)
            element.clear()
        elif tag == entry_tag:
            element.clear()
    return count, total


# --- children (one fresh process per import, for a true peak RSS) ---------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS since exec (VmHWM). Not ru_maxrss: it survives exec, so a child
    would report its parent's size whenever the parent was the larger."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(action: str, path: str) -> None:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from ingest.readings import document_import

    if action == "reset":
        tables = (
            "ingest_dailyrollup",
            "ingest_monthlyrollup",
            "ingest_readingrevision",
            "ingest_intervalreading",
            "ingest_usagesummary",
            "ingest_meterreading",
            "ingest_usagepoint",
            "ingest_readingtype",
        )
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # TRUNCATE gives every run the same fresh tables and indexes; DELETE would leave
                # the previous run's dead pages for the next import to wade through.
                cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
                cursor.execute("ANALYZE")
            else:
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        print(json.dumps({"ok": True}))
        return

    postgres = connection.vendor == "postgresql"

    def writes(cursor) -> int:
        if postgres:
            cursor.execute(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
                " FROM pg_stat_xact_user_tables WHERE relname LIKE 'ingest\\_%%'"
            )
        else:
            cursor.execute("SELECT total_changes()")
        return int(cursor.fetchone()[0])

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        before = writes(cursor)
        result = document_import(source=path, source_label="bench", now=timezone.now())
        written = writes(cursor) - before
    elapsed = time.perf_counter() - started
    readings = (
        result.readings_new
        + result.readings_updated
        + result.readings_unchanged
        + result.readings_stale
    )
    if not postgres:
        # total_changes() also counts the rows put in the temporary load tables: one per
        # reading in the file and one per block.
        written -= readings + _block_count(path)
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "readings": readings,
                "new": result.readings_new,
                "updated": result.readings_updated,
                "unchanged": result.readings_unchanged,
                "rows_written": written,
                "peak_rss_mb": peak_rss_mb(),
                "database": connection.vendor,
            }
        )
    )


def _block_count(path: str) -> int:
    return DAYS * int(Path(path).stem.rsplit("_", 1)[-1].rstrip("cy"))


def run_child(action: str, path: Path, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", action, str(path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"child {action} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- database setup ---------------------------------------------------------------------------


def bench_database_env() -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gascap.settings.local", "DJANGO_DEBUG": "0"}
    env["GASCAP_LOG_LEVEL"] = "WARNING"
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        base, _, name = url.rpartition("/")
        name = name.split("?", 1)[0] or "gascap"
        bench_name = f"{name}_bench"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (bench_name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{bench_name}"')
        env["DATABASE_URL"] = f"{base}/{bench_name}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{BENCH_DIR / 'bench.sqlite3'}"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=REPO, check=True)
    return env


def peers_parse(path: Path) -> dict[str, object]:
    """greenbutton-objects (PyPI) parsing the same file, installed into the venv on demand."""
    try:
        import greenbutton_objects  # noqa: F401
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "greenbutton-objects"], check=True
        )
    script = (
        "import time, resource, sys\n"
        "from greenbutton_objects import parse\n"
        "t = time.perf_counter()\n"
        "usage_points = parse.parse_feed(sys.argv[1])\n"
        "n = 0\n"
        "for up in usage_points:\n"
        "    for mr in up.meterReadings:\n"
        "        for ib in mr.intervalBlocks:\n"
        "            n += len(ib.intervalReadings)\n"
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "print(n, time.perf_counter() - t, int(hwm.split()[1]) / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"peer": "greenbutton-objects", "error": out.stderr.strip().splitlines()[-1:]}
    count, elapsed, rss = out.stdout.split()
    return {
        "peer": "greenbutton-objects",
        "readings": int(count),
        "seconds": float(elapsed),
        "rps": int(count) / float(elapsed),
        "peak_rss_mb": float(rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--peers", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("ACTION", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    customers = SIZES[args.size]
    path = BENCH_DIR / f"espi_{customers}cy.xml"
    if not path.exists():
        print(f"generating {path.name} ({customers} customer-year(s))…", file=sys.stderr)
        feed_generate(path, customers)
    expected = customers * DAYS * PER_DAY
    size_mb = path.stat().st_size / 1e6

    t = time.perf_counter()
    floor_count, _ = floor_parse(path)
    floor_s = time.perf_counter() - t
    assert floor_count == expected, (floor_count, expected)
    floor_rps = floor_count / floor_s

    env = bench_database_env()
    run_child("reset", path, env)
    first = run_child("import", path, env)
    again = run_child("import", path, env)
    assert first["new"] == expected, first
    assert again["unchanged"] == expected, again

    import_rps = expected / first["elapsed"]
    reimport_rps = expected / again["elapsed"]
    figures: dict[str, object] = {
        "database": first["database"],
        "size": args.size,
        "file_mb": round(size_mb, 1),
        "readings": expected,
        "floor_s": round(floor_s, 2),
        "floor_rps": round(floor_rps),
        "import_s": round(first["elapsed"], 2),
        "import_rps": round(import_rps),
        "import_ratio": round(import_rps / floor_rps, 3),
        "reimport_s": round(again["elapsed"], 2),
        "reimport_rps": round(reimport_rps),
        "reimport_ratio": round(reimport_rps / floor_rps, 3),
        "reimport_rows_written": again["rows_written"],
        "peak_rss_mb": round(max(first["peak_rss_mb"], again["peak_rss_mb"]), 1),
        "import_peak_rss_mb": round(first["peak_rss_mb"], 1),
        "reimport_peak_rss_mb": round(again["peak_rss_mb"], 1),
        "cpus": os.cpu_count(),
    }
    if args.peers:
        small = BENCH_DIR / "espi_1cy.xml"
        if not small.exists():
            feed_generate(small, 1)
        small_floor_t = time.perf_counter()
        floor_parse(small)
        small_floor_rps = SIZES["small"] * DAYS * PER_DAY / (time.perf_counter() - small_floor_t)
        peers = [peers_parse(small)]
        if "error" in peers[0]:
            # greenbutton-objects rejects PG&E's revenue-quality code 19 (an enum without it):
            # time it again on a copy whose quality codes are 17, for the ratio.
            adapted = BENCH_DIR / "espi_1cy_quality17.xml"
            if not adapted.exists():
                adapted.write_bytes(
                    small.read_bytes().replace(
                        b"<ns0:quality>19</ns0:quality>", b"<ns0:quality>17</ns0:quality>"
                    )
                )
            retry = peers_parse(adapted)
            retry["peer"] = "greenbutton-objects (quality 19 -> 17)"
            peers.append(retry)
        for peer in peers:
            if "rps" in peer:
                peer["ratio_to_floor"] = round(float(peer["rps"]) / small_floor_rps, 3)
        figures["peers"] = peers

    rows = [
        ("database", figures["database"]),
        ("readings", f"{expected:,} ({size_mb:,.0f} MB)"),
        ("floor (stdlib iterparse)", f"{floor_rps:,.0f} readings/s ({floor_s:.1f} s)"),
        (
            "import",
            f"{import_rps:,.0f} readings/s ({first['elapsed']:.1f} s), "
            f"{import_rps / floor_rps:.2f} x floor",
        ),
        (
            "re-import (unchanged)",
            f"{reimport_rps:,.0f} readings/s ({again['elapsed']:.1f} s), "
            f"{reimport_rps / floor_rps:.2f} x floor, "
            f"{again['rows_written']} rows written",
        ),
        ("peak RSS (importing process)", f"{figures['peak_rss_mb']} MB"),
    ]
    for peer in figures.get("peers", []):
        if "rps" in peer:
            rows.append(
                (
                    f"peer {peer['peer']} (1 customer-year)",
                    f"{peer['rps']:,.0f} readings/s, {peer['ratio_to_floor']} x floor, "
                    f"{peer['peak_rss_mb']:.0f} MB",
                )
            )
        else:
            rows.append((f"peer {peer['peer']}", f"failed: {peer['error']}"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
