"""Test-only crash points: a process dies at a named point when the environment arms it.

`GASCAP_TEST_CRASH_AT=<name>` makes `crash_point(name)` call `os._exit(CRASH_EXIT_CODE)` —
no `finally`, no rollback message, no atexit: what a SIGKILL or an OOM kill does at that
line. Used by the tests that prove recovery after a crash at the worst moment (e.g.
`after_token_answer`, between PG&E's token answer and our commit; docs/reliability.md
test 55). Never set it in a deployment: it exists so the tests can kill a real process at
an exact point instead of hoping a random SIGKILL lands there.
"""

from __future__ import annotations

import os

ENV_VAR = "GASCAP_TEST_CRASH_AT"
CRASH_EXIT_CODE = 70


def crash_point(name: str) -> None:
    """Exit the process at once when `GASCAP_TEST_CRASH_AT` names this point."""
    if os.environ.get(ENV_VAR) == name:
        os._exit(CRASH_EXIT_CODE)
