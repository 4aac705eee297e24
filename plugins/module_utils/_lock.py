# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-wide lock: one Yoroi change at a time on a host.

Every module run that changes anything, and the lockout guard's restore script, take an
exclusive ``flock`` on HOST_LOCK. Two runs on one host (two operators, or a run and a
guard timer firing) therefore never interleave their changes. Check mode takes no lock:
it reads only, and an audit must never wait for, or block, a change.

The restore script takes the same lock with ``flock(1)`` on the same path, so the path is
part of the contract: change it in both places or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time

HOST_LOCK = "/var/lib/yoroi/host.lock"
# A run that finds the host busy waits this long before it gives up with a clear error.
WAIT_SECONDS = 300


class HostBusy(Exception):
    """Another Yoroi run holds the host lock; the message names its holder."""


def _open(path):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    # O_NOFOLLOW: the lock file is never a link planted by someone else.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def host_lock(what, path=HOST_LOCK, wait=WAIT_SECONDS, sleep=time.sleep, clock=time.monotonic):
    """Hold the host lock for the ``with`` block; ``what`` names the holder in errors.

    Waits up to ``wait`` seconds for another holder, then raises HostBusy.
    """
    fd = _open(path)
    try:
        deadline = clock() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if clock() >= deadline:
                    raise HostBusy(
                        "another Yoroi run holds the host lock %s (%s); waited %d s"
                        % (path, _holder(fd), wait)
                    )
                sleep(0.5)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, ("%s pid %d since %s\n" % (what, os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
