"""Reliability-bar test 18, deep nesting and huge tokens: 100,000 nested elements, a single
30 MB text node and a 100,000-attribute element are refused with the parser's typed error in
under 2 s each, without a RecursionError, and the process stays under 300 MB.

The streaming ESPI parser checks the attribute count of the elements it reads (readings,
blocks, entries) and of the root, not of every element (that would cost an event per element
of an 800 MB feed); an attribute-heavy element elsewhere costs linear time and is freed as
the stream moves on.

The time bound is the case's CPU time (`time.process_time()` in the child), not wall time: what
it guards against is work that grows faster than the input (expansion, quadratic scans), and
CPU time measures that work whatever else the machine is running; a wall-clock bound failed
on a loaded machine with the same work.

Each case runs in a fresh interpreter so its peak RSS (`VmHWM`, which also sees libxml2's
and expat's C allocations that tracemalloc cannot) belongs to that case alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RSS_LIMIT_MB = 300
SECONDS_LIMIT = 2.0

_SCRIPT = r"""
import io, json, sys, time
shape, parser = sys.argv[1], sys.argv[2]
ESPI, ATOM = "http://naesb.org/espi", "http://www.w3.org/2005/Atom"
if parser == "batchlist":
    head, tail = b'<BatchList xmlns="%s"><resources>' % ESPI.encode(), b"</resources></BatchList>"
elif parser == "espi":
    head = (b'<feed xmlns="%s"><entry><content><IntervalBlock xmlns="%s"><IntervalReading>'
            % (ATOM.encode(), ESPI.encode()))
    tail = b"</IntervalReading></IntervalBlock></content></entry></feed>"
else:
    head = b'<entry xmlns="%s"><content><Authorization xmlns="%s"><scope>' % (
        ATOM.encode(), ESPI.encode())
    tail = b"</scope><status>1</status></Authorization></content></entry>"
if shape == "deep":
    body = head + b"<a>" * 100_000 + b"</a>" * 100_000 + tail
elif shape == "text":
    body = head + b"x" * (30 * 1024 * 1024) + tail
else:
    attributes = b" ".join(b'a%d="v"' % i for i in range(100_000))
    if parser == "espi":
        # On a reading: the stream checks the elements it reads (see the module docstring).
        body = head.replace(b"<IntervalReading>", b"<IntervalReading " + attributes + b">")
        body += tail
    else:
        body = head + b"<a " + attributes + b"/>" + tail
started = time.process_time()
outcome, reason = "accepted", None
try:
    if parser == "batchlist":
        from gascap.pge.batchlist import parse_batchlist
        parse_batchlist(body)
    elif parser == "espi":
        from gascap.pge.espi import EspiStream
        for _ in EspiStream(io.BytesIO(body)).batches():
            pass
    else:
        from gascap.pge.authorization import parse_authorizations
        parse_authorizations(body)
except Exception as exc:
    outcome = type(exc).__name__
    reason = getattr(exc, "reason", None) or getattr(exc, "code", None)
print(json.dumps({
    "outcome": outcome, "reason": reason, "seconds": time.process_time() - started,
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a large pytest process
    # would report the parent's size.
    "rss_mb": int(next(line for line in open("/proc/self/status")
                       if line.startswith("VmHWM:")).split()[1]) / 1024,
}))
"""

TYPED_ERRORS = {
    "batchlist": "BatchListRejected",
    "espi": "XmlRejected",
    "authorization": "PgePermanentError",
}


def run_case(shape: str, parser: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, shape, parser],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("parser", sorted(TYPED_ERRORS))
@pytest.mark.parametrize("shape", ["deep", "text", "attributes"])
def test_huge_or_deep_documents_are_refused_fast_in_bounded_memory(shape: str, parser: str) -> None:
    result = run_case(shape, parser)
    assert result["outcome"] == TYPED_ERRORS[parser], result
    assert result["reason"] in ("malformed", "empty"), result
    assert result["seconds"] < SECONDS_LIMIT, result
    assert result["rss_mb"] < RSS_LIMIT_MB, result
