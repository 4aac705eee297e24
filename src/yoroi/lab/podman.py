"""The one place where yoroi's lab calls podman.

Every call goes through :func:`podman` with an argv list (never a shell string)
and ``CONTAINERS_CONF`` pointing at the project's own ``containers.conf``
(runc runtime, ulimits that fit under the host's hard limits).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Sequence

CONTAINERS_CONF = Path(__file__).with_name("containers.conf")


class PodmanMissing(RuntimeError):
    pass


class PodmanError(RuntimeError):
    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.argv, self.returncode, self.stdout, self.stderr = list(argv), returncode, stdout, stderr
        super().__init__(
            f"podman {' '.join(argv)} failed with exit code {returncode}: "
            f"{(stderr or stdout).strip()[-2000:]}"
        )


def podman_binary() -> str:
    path = shutil.which("podman")
    if not path:
        raise PodmanMissing(
            "podman is not installed or not on PATH: the yoroi lab needs podman "
            "(Debian package 'podman') and runc (Debian package 'runc')"
        )
    return path


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def podman(
    *args: str,
    input: str | bytes | None = None,
    stdin: IO | int | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ``podman ARGS...``; return the CompletedProcess (text stdout/stderr).

    ``input`` feeds text/bytes on stdin; ``stdin`` passes a file object (e.g.
    the stdout of a ``tar`` process for ``podman import -``).
    Raises :class:`PodmanError` on a non-zero exit when ``check`` is true.
    """
    argv = [podman_binary(), *args]
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(
        argv,
        input=input,
        stdin=stdin if input is None else None,
        capture_output=True,
        env=podman_env(),
        timeout=timeout, check=False,
    )
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise PodmanError(args, proc.returncode, out, err)
    return result


def exists(kind: str, name: str) -> bool:
    """``podman {container,network,image} exists NAME``."""
    return podman(kind, "exists", name, check=False).returncode == 0
