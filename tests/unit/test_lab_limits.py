"""The inotify check before a lab starts: raised as root (and said), refused otherwise."""

import ctypes
import os

import pytest

from yoroi.lab import limits
from yoroi.lab.limits import LimitError

INSTANCES = "fs.inotify.max_user_instances"
WATCHES = "fs.inotify.max_user_watches"


@pytest.fixture
def proc_sys(tmp_path):
    (tmp_path / "fs" / "inotify").mkdir(parents=True)
    limits.write_sysctl(INSTANCES, 128, tmp_path)
    limits.write_sysctl(WATCHES, 65536, tmp_path)
    return tmp_path


def test_one_host_fits_debian_defaults():
    assert limits.shortfalls(1, {INSTANCES: 128, WATCHES: 65536}, (20, 300)) == []


def test_fifty_hosts_do_not_fit_128_instances():
    missing = limits.shortfalls(50, {INSTANCES: 128, WATCHES: 1 << 20}, (20, 300))
    assert [s.key for s in missing] == [INSTANCES]
    assert missing[0].current == 128 and missing[0].required > 50 * 8
    assert missing[0].command == f"sysctl -w {INSTANCES}={missing[0].required}"


def test_what_is_already_in_use_counts():
    free = limits.shortfalls(2, {INSTANCES: 128, WATCHES: 1 << 20}, (0, 0))
    busy = limits.shortfalls(2, {INSTANCES: 128, WATCHES: 1 << 20}, (100, 0))
    assert free == [] and [s.key for s in busy] == [INSTANCES]


def test_watches_too():
    missing = limits.shortfalls(50, {INSTANCES: 1 << 16, WATCHES: 8192}, (0, 0))
    assert [s.key for s in missing] == [WATCHES]


def test_root_raises_and_says_so(proc_sys):
    said = []
    raised = limits.ensure_inotify(50, said.append, euid=0, root=proc_sys, usage=(10, 100))
    assert [s.key for s in raised] == [INSTANCES]
    assert limits.read_sysctl(INSTANCES, proc_sys) == raised[0].required
    assert limits.read_sysctl(WATCHES, proc_sys) == 65536  # enough: left alone
    assert len(said) == 1 and f"raised {INSTANCES} from 128 to {raised[0].required}" in said[0]


def test_other_users_are_refused_with_the_fix(proc_sys):
    with pytest.raises(LimitError, match=rf"sudo sysctl -w {INSTANCES}=\d+") as exc:
        limits.ensure_inotify(50, print, euid=1000, root=proc_sys, usage=(10, 100))
    assert "is 128, needs" in str(exc.value)
    assert limits.read_sysctl(INSTANCES, proc_sys) == 128


def test_nothing_to_do_changes_nothing(proc_sys):
    said = []
    assert limits.ensure_inotify(1, said.append, euid=0, root=proc_sys, usage=(10, 100)) == []
    assert said == [] and limits.read_sysctl(INSTANCES, proc_sys) == 128


def test_usage_is_read_from_proc(tmp_path):
    libc = ctypes.CDLL(None, use_errno=True)
    before = limits.inotify_usage(os.geteuid())
    fd = libc.inotify_init1(0)
    assert fd >= 0
    try:
        assert libc.inotify_add_watch(fd, str(tmp_path).encode(), 0x100) >= 0  # IN_CREATE
        instances, watches = limits.inotify_usage(os.geteuid())
    finally:
        os.close(fd)
    # other processes of this user may come and go meanwhile; this one adds one of each
    assert instances >= 1 and watches >= 1
    assert (instances, watches) != (0, 0) and instances >= before[0] - 5
