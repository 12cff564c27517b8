"""Coverage-guided fuzzing of the XML parsers with atheris (reliability-bar tests 67 and 68).

    .venv/bin/python bench/fuzz_parsers.py batchlist|espi|authorization -- \
        -max_total_time=60 -timeout=1 -rss_limit_mb=512

Everything after `--` goes to libFuzzer. The corpus starts from the real samples in
tests/fixtures/ plus the hostile payloads of tests 12-15 (pointed at a loopback listener that
must see no connection) and lives in var/fuzz/<target>/corpus; crashes, timeouts and
out-of-memory inputs land in var/fuzz/<target>/ as libFuzzer artifacts. Copy one into
tests/fixtures/fuzz/ (named `<target>-<what>.bin`) and tests/fuzz/test_regressions.py replays it.

Allowed outcomes (anything else is a crash):
- batchlist: a non-empty list of distinct, stripped `str` URLs, or `BatchListRejected` with a
  reason from `BATCHLIST_REASONS`;
- espi: reading rows whose duration is an int > 0 and whose start is an int (a Decimal only
  when fractional) within the storable range, or `EspiRejected` (dtd/malformed/empty/invalid);
- authorization: `AuthorizationInfo`s, or `PgePermanentError(code="malformed")`.

atheris is installed into the venv on first use (it is not a project requirement).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fuzz.payloads import (  # noqa: E402
    AUTHORIZATION_SEED,
    ESPI_SEEDS,
    AttackerListener,
    batchlist_seed,
    fixture_bytes,
    hostile_variants,
)

TARGETS = ("batchlist", "espi", "authorization")


def _atheris():  # type: ignore[no-untyped-def]
    try:
        import atheris
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "atheris"], check=True)
        import atheris
    return atheris


def _seeds(target: str, listener: AttackerListener, canary: str) -> dict[str, bytes]:
    if target == "batchlist":
        bodies = {"pge_2020_batchlist": batchlist_seed()}
    elif target == "espi":
        bodies = {name.removesuffix(".xml"): fixture_bytes(name) for name in ESPI_SEEDS}
    else:
        bodies = {"pge_2015_authorization": fixture_bytes(AUTHORIZATION_SEED)}
    seeds = dict(bodies)
    first_name, first = next(iter(bodies.items()))
    for name, data in hostile_variants(
        first, attacker_url=listener.url, canary_path=canary
    ).items():
        seeds[f"{first_name}-{name}"] = data
    return seeds


def _one_input(target: str, listener: AttackerListener):  # type: ignore[no-untyped-def]
    from gascap.pge.authorization import parse_authorizations
    from gascap.pge.batchlist import BATCHLIST_REASONS, BatchListRejected, parse_batchlist
    from gascap.pge.errors import PgePermanentError
    from gascap.pge.espi import START_MAX, START_MIN, EspiRejected, EspiStream

    def batchlist(data: bytes) -> None:
        try:
            urls = parse_batchlist(data)
        except BatchListRejected as exc:
            assert exc.reason in BATCHLIST_REASONS, exc.reason
            return
        assert urls and len(set(urls)) == len(urls)
        assert all(type(u) is str and u and u == u.strip() for u in urls)

    def espi(data: bytes) -> None:
        stream = EspiStream(io.BytesIO(data))
        try:
            for _block, rows in stream.batches():
                for start, duration, value, *_rest in rows:
                    assert type(duration) is int and duration > 0, duration
                    assert type(start) is int or (type(start) is Decimal and start % 1), start
                    assert START_MIN <= start <= START_MAX, start
                    assert type(value) is int, value
        except EspiRejected as exc:
            assert exc.reason in ("dtd", "malformed", "empty", "invalid"), exc.reason
            return
        stream.document_series()

    def authorization(data: bytes) -> None:
        try:
            for info in parse_authorizations(data):
                assert type(info.status) is int
        except PgePermanentError as exc:
            assert exc.code == "malformed", exc.code

    check = {"batchlist": batchlist, "espi": espi, "authorization": authorization}[target]

    def test_one_input(data: bytes) -> None:
        check(data)
        if listener.connections:
            raise RuntimeError(f"the parser connected to the attacker listener: {data[:200]!r}")

    return test_one_input


def main() -> None:
    argv = sys.argv[1:]
    libfuzzer_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    ours = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=TARGETS)
    args = parser.parse_args(ours)

    atheris = _atheris()
    work = REPO / "var" / "fuzz" / args.target
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    listener = AttackerListener().start()
    canary = Path(tempfile.mkdtemp()) / "canary.txt"
    canary.write_text("gascap-fuzz-canary")
    for name, data in _seeds(args.target, listener, str(canary)).items():
        # Hostile seeds name this run's listener port: rewritten each run.
        (corpus / f"seed-{name}.xml").write_bytes(data)

    with atheris.instrument_imports():
        import gascap.pge.authorization
        import gascap.pge.batchlist
        import gascap.pge.espi
        import gascap.pge.safexml  # noqa: F401

    if not any(a.startswith("-artifact_prefix=") for a in libfuzzer_args):
        libfuzzer_args.append(f"-artifact_prefix={work}/")
    if not any(a.startswith("-max_len=") for a in libfuzzer_args):
        libfuzzer_args.append("-max_len=65536")
    atheris.Setup([sys.argv[0], *libfuzzer_args, str(corpus)], _one_input(args.target, listener))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
