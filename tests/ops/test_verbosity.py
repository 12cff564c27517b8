"""-v 0 silences every command's chatter (a command whose output is its result — a secret
shown once, an exported file, a failed check — still prints that); -v 2 adds detail."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _out(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    "command",
    [
        ["ensure_schedules"],
        ["rotate_field_keys"],
        ["ingest_replay", "--status", "FAILED"],
        ["ensure_admin"],
        ["status"],
    ],
)
def test_quiet_at_verbosity_0_and_talking_at_1(command: list[str]) -> None:
    get_user_model().objects.create_superuser("root", "r@example.org", "x-long-password-1")
    assert _out(*command, "-v", "0") == ""
    assert _out(*command, "-v", "1") != ""


def test_sandbox_certs_lists_files_only_at_verbosity_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    directory = str(tmp_path / "certs")
    assert _out("sandbox_certs", "--dir", directory, "-v", "0") == ""
    assert len(_out("sandbox_certs", "--dir", directory).splitlines()) == 1
    detailed = _out("sandbox_certs", "--dir", directory, "-v", "2").splitlines()
    assert len(detailed) > 2 and any(line.strip().endswith(".pem") for line in detailed)
