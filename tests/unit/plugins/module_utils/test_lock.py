"""The host-wide lock: exclusive across processes, a clear error when busy."""

import os
import subprocess

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _lock


def test_second_holder_waits_then_fails_naming_the_first(tmp_path):
    path = str(tmp_path / "host.lock")
    clock = iter(range(0, 1000))
    with _lock.host_lock("stale_accounts", path=path):
        with pytest.raises(_lock.HostBusy, match="stale_accounts pid %d" % os.getpid()):
            with _lock.host_lock("sshd_hardening", path=path, wait=3, sleep=lambda s: None, clock=lambda: next(clock)):
                pass


def test_lock_is_released_after_the_block(tmp_path):
    path = str(tmp_path / "host.lock")
    with _lock.host_lock("first", path=path):
        pass
    with _lock.host_lock("second", path=path, wait=0):
        pass


def test_flock_command_sees_the_same_lock(tmp_path):
    """The guard's restore script uses flock(1) on the same file: it must block on us."""
    path = str(tmp_path / "host.lock")
    with _lock.host_lock("module", path=path):
        rc = subprocess.call(["flock", "-n", path, "true"])
    assert rc == 1
    assert subprocess.call(["flock", "-n", path, "true"]) == 0


def test_lock_file_symlink_is_refused(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep\n")
    link = tmp_path / "host.lock"
    link.symlink_to(target)
    with pytest.raises(OSError):
        with _lock.host_lock("x", path=str(link)):
            pass
    assert target.read_text() == "keep\n"
