"""Host kernel limits that a lab of many systemd containers runs into.

Every systemd container (PID 1, journald, logind, udev-less services) holds inotify
instances and watches, and the kernel counts them per user of the host: with rootful
podman all containers count against root. With the Debian default
``fs.inotify.max_user_instances = 128`` a lab of 50 hosts stops part-way, systemd
reporting "Failed to create inotify object: Too many open files". ``lab up`` checks the
limits first: as root it raises them (and says so), otherwise it refuses with the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_SYS = Path("/proc/sys")
# Measured on a bookworm lab host: systemd, journald, logind, dbus and sshd hold ~10
# instances and ~100 watches; the margins leave room for a busy container.
INSTANCES_PER_HOST = 16
WATCHES_PER_HOST = 1024
# Room for what starts on the host meanwhile (another lab, an editor, systemd itself).
INSTANCES_HEADROOM = 64
WATCHES_HEADROOM = 8192


class LimitError(RuntimeError):
    pass


@dataclass(frozen=True)
class Shortfall:
    key: str  # sysctl name, e.g. fs.inotify.max_user_instances
    current: int
    required: int

    @property
    def command(self) -> str:
        return f"sysctl -w {self.key}={self.required}"


def inotify_usage(uid: int, proc: Path = Path("/proc")) -> tuple[int, int]:
    """(instances, watches) that processes of ``uid`` hold now, read from /proc."""
    instances = watches = 0
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        base = proc / entry
        try:
            owner = os.stat(base).st_uid
            if owner != uid:
                continue
            fds = os.listdir(base / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(base / "fd" / fd) != "anon_inode:inotify":
                    continue
                instances += 1
                with open(base / "fdinfo" / fd) as handle:
                    watches += sum(1 for line in handle if line.startswith("inotify wd:"))
            except OSError:
                continue
    return instances, watches


def read_sysctl(key: str, root: Path = PROC_SYS) -> int:
    return int((root / key.replace(".", "/")).read_text().split()[0])


def write_sysctl(key: str, value: int, root: Path = PROC_SYS) -> None:
    (root / key.replace(".", "/")).write_text(f"{value}\n")


def shortfalls(hosts: int, limits: dict[str, int], usage: tuple[int, int]) -> list[Shortfall]:
    """The inotify limits too low for ``hosts`` more systemd containers.

    ``limits`` maps the two sysctl keys to their values; ``usage`` is what the user
    already holds (instances, watches). A limit is never proposed lower than it is.
    """
    in_use_instances, in_use_watches = usage
    needed = {
        "fs.inotify.max_user_instances":
            in_use_instances + hosts * INSTANCES_PER_HOST + INSTANCES_HEADROOM,
        "fs.inotify.max_user_watches":
            in_use_watches + hosts * WATCHES_PER_HOST + WATCHES_HEADROOM,
    }
    return [Shortfall(key, limits[key], required)
            for key, required in needed.items() if limits[key] < required]


def ensure_inotify(hosts: int, say, *, euid: int | None = None, root: Path = PROC_SYS,
                   usage: tuple[int, int] | None = None) -> list[Shortfall]:
    """Raise the inotify limits for a lab of ``hosts`` containers, or refuse.

    As root each limit that is too low is raised, and ``say`` is told which and from
    what to what; as another user a :class:`LimitError` names the commands to run.
    Returns what was raised.
    """
    euid = os.geteuid() if euid is None else euid
    keys = ("fs.inotify.max_user_instances", "fs.inotify.max_user_watches")
    limits = {key: read_sysctl(key, root) for key in keys}
    missing = shortfalls(hosts, limits, usage if usage is not None else inotify_usage(euid))
    if not missing:
        return []
    if euid != 0:
        fixes = "; ".join(f"sudo {s.command}" for s in missing)
        detail = ", ".join(f"{s.key} is {s.current}, needs {s.required}" for s in missing)
        raise LimitError(
            f"a lab of {hosts} host(s) needs more inotify room than this machine gives "
            f"({detail}): systemd in the containers would fail with 'Too many open "
            f"files'. Run: {fixes}"
        )
    for s in missing:
        write_sysctl(s.key, s.required, root)
        say(f"raised {s.key} from {s.current} to {s.required} for {hosts} systemd "
            f"container(s) (as root; `{s.command}` to do it yourself)")
    return missing
