"""Token refresh across real worker processes on PostgreSQL, against the sandbox (which
rotates refresh tokens like PG&E: docs/pge-protocol.md "Refresh").

- Test 54, processes: 4 processes find the access token expired at the same moment; PG&E
  sees exactly one token request and every process gets the token it answered.
- Test 55: a process killed between PG&E's token answer and our commit (the test-only crash
  point `after_token_answer`, gascap/crashpoints.py). The rotated refresh token is gone with
  it; the next run must not leave the consent silently broken: it is marked NEEDS_RECONSENT
  with "Refresh answer lost" as the reason, and work for it stops.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from customers.models import Authorization
from gascap.crashpoints import CRASH_EXIT_CODE, ENV_VAR
from sandbox.faults import Fault
from sandbox.oauth import TOKEN_PATHS
from tests.reliability.conftest import REPO, Stack, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PROCESSES = 4


def _expire_access_token(stack: Stack) -> Authorization:
    authorization = Authorization.objects.get(subscription_id=stack.sid)
    authorization.access_token_expires_at = timezone.now() - timedelta(minutes=1)
    authorization.save(update_fields=["access_token_expires_at"])
    return authorization


def _token_requests(stack: Stack) -> int:
    return sum(1 for r in stack.sandbox.state.requests_list() if r.path in TOKEN_PATHS)


def _child(stack: Stack, directory: Path, index: int, **extra_env: str) -> subprocess.Popen:
    env = {**os.environ, **stack.env, **extra_env}
    args = [sys.executable, "-m", "tests.reliability.refresh_child", stack.sid]
    return subprocess.Popen(
        [*args, str(directory), str(index)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _run_together(children: list[subprocess.Popen], directory: Path) -> list[int]:
    """Release the children at once (after each said it is ready); their exit codes."""
    wait_for(
        lambda: (
            all((directory / f"ready-{i}").exists() for i in range(len(children)))
            or any(c.poll() is not None for c in children)
        ),
        timeout=60,
        what="every child process ready",
    )
    (directory / "go").touch()
    codes = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert stack_token_free(out), "a token reached a child's output"
        codes.append(child.returncode)
    return codes


def stack_token_free(output: bytes) -> bool:
    return b"Bearer" not in output and b"refresh_token" not in output


def test_four_processes_refresh_once(stack: Stack, tmp_path: Path) -> None:
    _expire_access_token(stack)
    old_access = hashlib.sha256(stack.access_token.encode()).hexdigest()
    # A slow token answer keeps the first refresh in flight while the others arrive.
    stack.sandbox.state.fault_add(Fault(kind="slow", endpoint="token", seconds=1.0, times=1))
    before = _token_requests(stack)

    children = [_child(stack, tmp_path, i) for i in range(PROCESSES)]
    codes = _run_together(children, tmp_path)

    assert codes == [0] * PROCESSES
    results = {(tmp_path / f"result-{i}").read_text() for i in range(PROCESSES)}
    assert len(results) == 1, results  # every process holds the one refreshed token
    assert results != {old_access}
    assert _token_requests(stack) - before == 1
    authorization = Authorization.objects.get(subscription_id=stack.sid)
    assert authorization.status == Authorization.Status.ACTIVE
    assert authorization.refresh_sent_at is None
    assert authorization.refresh_token != stack.refresh_token  # the rotated one was stored


def test_crash_between_token_answer_and_commit_is_not_silent(stack: Stack, tmp_path: Path) -> None:
    _expire_access_token(stack)
    before = _token_requests(stack)

    (tmp_path / "crash").mkdir()
    crashed = _child(stack, tmp_path / "crash", 0, **{ENV_VAR: "after_token_answer"})
    assert _run_together([crashed], tmp_path / "crash") == [CRASH_EXIT_CODE]
    assert _token_requests(stack) - before == 1  # PG&E answered (and rotated) before the crash
    authorization = Authorization.objects.get(subscription_id=stack.sid)
    assert authorization.refresh_token == stack.refresh_token  # the answer never committed
    assert authorization.refresh_sent_at is not None  # ... and the row says one was sent

    # The next run, in another process as a worker would: PG&E refuses the old refresh
    # token; the consent is marked for re-consent with the reason, and work stops.
    (tmp_path / "next").mkdir()
    assert _run_together([_child(stack, tmp_path / "next", 0)], tmp_path / "next") == [0]
    assert (tmp_path / "next" / "result-0").read_text() == "error:needs_reconsent"
    authorization.refresh_from_db()
    assert authorization.status == Authorization.Status.NEEDS_RECONSENT
    assert authorization.last_error.startswith("Refresh answer lost"), authorization.last_error
    assert authorization.refresh_sent_at is None
    assert _token_requests(stack) - before == 2


def test_invalid_grant_without_a_lost_answer_keeps_the_plain_reason(
    stack: Stack, tmp_path: Path
) -> None:
    """The control for the test above: a consent revoked at PG&E is not "answer lost"."""
    _expire_access_token(stack)
    stack.sandbox.state.authorization_revoke(subscription_id=stack.sid)
    (tmp_path / "run").mkdir()
    assert _run_together([_child(stack, tmp_path / "run", 0)], tmp_path / "run") == [0]
    authorization = Authorization.objects.get(subscription_id=stack.sid)
    assert authorization.status == Authorization.Status.NEEDS_RECONSENT
    assert authorization.last_error.startswith("Refresh refused by PG&E"), authorization.last_error
