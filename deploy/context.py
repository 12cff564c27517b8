"""What `docker build` would send: the build context after `.dockerignore`, computed with the
Docker SDK's own implementation of Docker's matching rules (`docker.utils.build.tar`, what
`docker-py` sends to the engine), so no Docker engine is needed to check it.

`operator_layout` copies the repository's files and plants what an operator's checkout holds
next to them (the README has them create `.env` and `secrets/`; `make run` makes `var/`), so
the check is about a real deployment folder, not a clean clone. `context_problems` names every
secret path that would reach the builder and every file the image needs that would not.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

# What an operator's deployment folder holds besides the code (all must stay out).
PLANTED_SECRETS = (
    ".env",
    ".env.production",
    "secrets/pge/client.key.pem",
    "secrets/pge/client.crt.pem",
    "secrets/tls/privkey.pem",
    "var/field-encryption.key",
    "var/gascap.sqlite3",
    "var/certs/ca.key",
    ".git/config",
    ".venv/pyvenv.cfg",
    # Strays inside folders the image does need.
    "gascap/.env",
    "ingest/leftover.key",
    "customers/settings/local.pem",
)
# No path in the context may have one of these as a component, or match these names.
SECRET_COMPONENTS = {".git", ".venv", "secrets", "var", "__pycache__"}
SECRET_SUFFIXES = (".pem", ".key", ".sqlite3")
# What the Dockerfile and the compose commands need from the context.
REQUIRED = (
    "Dockerfile",
    "manage.py",
    "requirements.lock",
    "gascap/wsgi.py",
    "gascap/settings/production.py",
    "gascap/beat.py",
    "gascap/healthcheck.py",
    "customers/models.py",
    "ingest/tasks.py",
    "api/apps.py",
    "ops/apps.py",
)


def dockerignore_patterns(root: Path) -> list[str]:
    """The patterns as docker-py reads `.dockerignore` (docker/api/build.py)."""
    path = root / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def repository_files(root: Path) -> list[str]:
    """Files of the working tree that git would keep (tracked and new, not ignored)."""
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    names = [n for n in result.stdout.decode().split("\0") if n]
    return [n for n in names if (root / n).is_file()]


def operator_layout(root: Path, target: Path) -> Path:
    """A copy of the repository as an operator's folder: the code plus planted secrets."""
    for name in repository_files(root):
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest)
    for name in PLANTED_SECRETS:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("planted secret: must never reach the image\n")
    return target


def build_context(folder: Path, archive: Path) -> list[str]:
    """Write the tar `docker build` would send for `folder` and return its member names."""
    from docker.utils.build import tar

    with archive.open("wb") as fh:
        tar(str(folder), exclude=dockerignore_patterns(folder), fileobj=fh)
    with tarfile.open(archive) as tf:
        return sorted(m.name for m in tf.getmembers() if m.isfile())


def context_problems(members: list[str]) -> list[str]:
    problems = []
    for name in members:
        parts = PurePosixPath(name).parts
        if (
            SECRET_COMPONENTS.intersection(parts)
            or parts[-1].startswith(".env")
            or name.endswith(SECRET_SUFFIXES)
            or name in PLANTED_SECRETS
        ):
            problems.append(f"secret path in the build context: {name}")
    missing = sorted(set(REQUIRED) - set(members))
    problems += [f"needed by the image but not in the build context: {n}" for n in missing]
    return problems


def extract(archive: Path, target: Path) -> None:
    """Unpack the context: the smoke runs the services from it, as the image would."""
    with tarfile.open(archive) as tf:
        tf.extractall(target, filter="data")
