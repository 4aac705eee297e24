"""stale_accounts end to end in-process, over files in a temporary root.

The account tools are replaced by a script that records its argv and applies the change
to the temporary /etc/shadow, so a second run sees the result; the real usermod and
userdel are exercised on lab hosts (tests/infra).
"""

import os
import stat
import tarfile
import time

import pytest

from ansible.module_utils import basic
from ansible_collections.yoroi.baseline.plugins.module_utils import _accounts as acc
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import stale_accounts

NOW = time.time()
TODAY = int(NOW // acc.DAY)

FAKE_TOOL = r"""#!/usr/bin/env python3
import os, sys
root = os.environ["FAKE_ROOT"]
with open(os.path.join(root, "calls"), "a") as log:
    log.write(" ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\n")
name = sys.argv[-1]
shadow = os.path.join(root, "shadow")
passwd = os.path.join(root, "passwd")
if os.path.basename(sys.argv[0]) == "usermod":
    rows = [l.split(":") for l in open(shadow).read().splitlines()]
    for row in rows:
        if row[0] == name:
            if "--lock" in sys.argv:
                row[1] = "!" + row[1]
            if "--expiredate" in sys.argv:
                row[7] = "1"
    open(shadow, "w").write("\n".join(":".join(r) for r in rows) + "\n")
    if "--shell" in sys.argv:
        shell = sys.argv[sys.argv.index("--shell") + 1]
        prow = [l.split(":") for l in open(passwd).read().splitlines()]
        for row in prow:
            if row[0] == name:
                row[6] = shell
        open(passwd, "w").write("\n".join(":".join(r) for r in prow) + "\n")
elif os.path.basename(sys.argv[0]) == "userdel":
    for path in (passwd, shadow):
        keep = [l for l in open(path).read().splitlines() if not l.startswith(name + ":")]
        open(path, "w").write("\n".join(keep) + "\n")
"""

# journalctl: prints FAKE_ROOT/journal for a --since query and FAKE_ROOT/journal-old
# (entries older than the window) for an --until query; nothing when they are missing.
FAKE_JOURNALCTL = r"""#!/usr/bin/env python3
import os, sys
name = "journal-old" if "--until" in sys.argv else "journal"
path = os.path.join(os.environ["FAKE_ROOT"], name)
if os.path.exists(path):
    sys.stdout.write(open(path).read())
"""


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake root with the lab's neglected accounts, wired into the module's paths."""
    home = tmp_path / "home"
    for name in ("alice", "bob", "carol", "dave"):
        (home / name).mkdir(parents=True)
    (home / "bob" / "notes.txt").write_text("bob's work\n")
    crontabs = tmp_path / "crontabs"
    crontabs.mkdir()
    (crontabs / "bob").write_text("0 3 * * * /home/bob/backup.sh\n")
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "backupsvc:x:998:998::/var/lib/backupsvc:/bin/bash\n"
        "yoroi:x:1000:1000::{h}/yoroi:/bin/bash\n"
        "alice:x:1001:1001::{h}/alice:/bin/bash\n"
        "bob:x:1002:1002::{h}/bob:/bin/bash\n"
        "carol:x:1003:1003::{h}/carol:/bin/bash\n"
        "dave:x:1004:1004::{h}/dave:/bin/bash\n"
        "toor:x:0:0::/root:/bin/bash\n".format(h=home)
    )
    (tmp_path / "shadow").write_text(
        "root:$y$r:19000:0:99999:7:::\n"
        "backupsvc:!:19000::::::\n"
        "yoroi:!:{t}:0:99999:7:::\n"
        "alice:$y$a:{t}:0:99999:7:::\n"
        "bob:$y$b:{t}:0:99999:7:::\n"
        "carol:$y$c:17956:0:99999:7:::\n"
        "dave::{t}:0:99999:7:::\n"
        "toor:$y$t:{t}:0:99999:7:::\n".format(t=TODAY)
    )
    (tmp_path / "login.defs").write_text("UID_MIN 1000\nUID_MAX 60000\n")
    (tmp_path / "shells").write_text("/bin/sh\n/bin/bash\n")
    size = acc.LASTLOG_RECORD.size
    data = bytearray(size * 1003)
    acc.LASTLOG_RECORD.pack_into(data, 1001 * size, int(NOW - 2 * acc.DAY), b"pts/0", b"192.0.2.1")
    acc.LASTLOG_RECORD.pack_into(data, 1002 * size, int(NOW - 400 * acc.DAY), b"pts/0", b"192.0.2.2")
    (tmp_path / "lastlog").write_bytes(bytes(data))
    (tmp_path / "wtmp").write_bytes(b"")
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("usermod", "userdel"):
        tool = tools / name
        tool.write_text(FAKE_TOOL)
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    journalctl = tools / "journalctl"
    journalctl.write_text(FAKE_JOURNALCTL)
    journalctl.chmod(journalctl.stat().st_mode | stat.S_IEXEC)
    for constant, name in (("PASSWD", "passwd"), ("SHADOW", "shadow"), ("LOGIN_DEFS", "login.defs"),
                           ("SHELLS", "shells"), ("LASTLOG", "lastlog"), ("WTMP", "wtmp"),
                           ("LASTLOG2_DB", "none.db"), ("WTMPDB_DB", "none2.db"),
                           ("CRONTABS", "crontabs"), ("MAIL", "mail")):
        monkeypatch.setattr(stale_accounts, constant, str(tmp_path / name))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: str(tools / name))
    monkeypatch.setenv("FAKE_ROOT", str(tmp_path))
    monkeypatch.delenv("SUDO_USER", raising=False)
    return tmp_path


# no systemd here: the guard is proven on lab hosts (tests/infra)
ARGS = {"automation_account": "yoroi", "archive_dir": None, "guard_timeout": 0}


def args(host, **extra):
    base = dict(ARGS, archive_dir=str(host / "archive"))
    base.update(extra)
    return base


def by_subject(result):
    return {(f["control"], f.get("subject")): f for f in result["findings"]}


def test_check_mode_reports_and_changes_nothing(host, run_module):
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in host.iterdir() if p.is_file()}
    result, failed = run_module(stale_accounts, args(host), check_mode=True, diff=True)
    assert not failed
    assert result["changed"] is True
    found = by_subject(result)
    for key in (("ACC-001", "bob"), ("ACC-002", "carol"), ("ACC-003", "dave"), ("ACC-004", "toor"), ("ACC-005", "backupsvc")):
        assert found[key]["status"] == "fail", key
    assert "bob: password locked, expired" in result["diff"]["after"]
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in host.iterdir() if p.is_file()}
    assert after == before
    assert not (host / "calls").exists()


def test_apply_then_second_run_changes_nothing(host, run_module):
    result, failed = run_module(stale_accounts, args(host))
    assert not failed, result
    found = by_subject(result)
    assert found[("ACC-001", "bob")]["status"] == "fixed"
    assert found[("ACC-005", "backupsvc")]["status"] == "fixed"
    calls = (host / "calls").read_text().splitlines()
    assert "usermod --lock --expiredate 1 bob" in calls
    assert "usermod --shell /usr/sbin/nologin backupsvc" in calls
    assert not any(call.endswith(" yoroi") or call.endswith(" alice") for call in calls)
    again, failed = run_module(stale_accounts, args(host))
    assert not failed
    assert again["changed"] is False
    assert {f["status"] for f in again["findings"]} <= {"pass", "skipped"}


def test_protected_accounts_are_skipped_and_untouched(host, run_module):
    result = run_module(stale_accounts, args(host, break_glass_accounts=["carol"], protected_accounts=["toor"]))[0]
    found = by_subject(result)
    assert found[("ACC-002", "carol")]["status"] == "skipped"
    assert found[("ACC-004", "toor")]["status"] == "skipped"
    calls = (host / "calls").read_text()
    assert " carol" not in calls and " toor" not in calls
    assert "carol" in result["protected"] and "yoroi" in result["protected"]


def test_sudo_user_is_protected(host, run_module, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "bob")
    result = run_module(stale_accounts, args(host, automation_account=None))[0]
    assert by_subject(result)[("ACC-001", "bob")]["status"] == "skipped"


def test_remove_archives_home_and_crontab_first(host, run_module):
    result, failed = run_module(stale_accounts, args(host, policy={"stale": "remove"}))
    assert not failed
    archive = result["archives"]["bob"]
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"
    assert oct(os.stat(host / "archive").st_mode & 0o777) == "0o700"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert "home/notes.txt" in names and "crontab" in names
        assert tar.extractfile("home/notes.txt").read() == b"bob's work\n"
    assert archive in by_subject(result)[("ACC-001", "bob")]["evidence"]
    assert "bob:" not in (host / "passwd").read_text()
    assert not (host / "crontabs" / "bob").exists()
    assert [p.name for p in (host / "archive").iterdir()] == [os.path.basename(archive)]


def test_report_policy_leaves_drift_and_changes_nothing(host, run_module):
    policy = {kind: "report" for kind in acc.ACTIONS}
    result = run_module(stale_accounts, args(host, policy=policy))[0]
    assert result["changed"] is False
    assert by_subject(result)[("ACC-001", "bob")]["status"] == "fail"
    assert not (host / "calls").exists()


@pytest.mark.parametrize(
    "bad, word",
    [
        ({"policy": {"extra_uid0": "remove"}}, "extra_uid0"),
        ({"policy": {"stale": "delete"}}, "stale"),
        ({"max_inactive_days": 0}, "max_inactive_days"),
        ({"max_inactive_days": "soon"}, "max_inactive_days"),
    ],
)
def test_bad_input_fails_naming_the_option_and_changes_nothing(host, run_module, bad, word):
    result, failed = run_module(stale_accounts, args(host, **bad))
    assert failed
    assert word in result["msg"]
    assert not (host / "calls").exists()


def test_a_refusal_keeps_every_control_in_the_report(host, run_module):
    result, failed = run_module(stale_accounts, args(host, max_inactive_days=0))
    assert failed
    assert sorted(f["control"] for f in result["findings"]) == sorted(acc.CONTROLS.values())
    assert {f["status"] for f in result["findings"]} == {"error"}


def test_changes_wait_for_the_host_lock_and_a_busy_host_changes_nothing(host, run_module, host_lock, monkeypatch):
    from ansible_collections.yoroi.baseline.plugins.module_utils import _concern, _lock

    monkeypatch.setattr(_concern, "LOCK_WAIT", 0)
    with _lock.host_lock("another run", path=str(host_lock)):
        result, failed = run_module(stale_accounts, args(host))
        assert failed and "another run" in result["msg"]
        assert {f["status"] for f in result["findings"]} == {"error"}
        assert not (host / "calls").exists()
        audit, failed = run_module(stale_accounts, args(host), check_mode=True)  # an audit never waits
        assert not failed and audit["changed"]


# A directory (LDAP/SSSD) user's UID: one login of theirs makes lastlog ~438 GB, sparse.
DIRECTORY_UID = 1500000000
READ_LIMIT = 64 * 1024


class _BoundedReads(object):
    """A file whose read() refuses to return more than READ_LIMIT bytes at once."""

    def __init__(self, handle):
        self._handle = handle

    def read(self, size=-1):
        if size is None or size < 0 or size > READ_LIMIT:
            raise AssertionError("lastlog read asked for %s bytes (whole file?)" % size)
        return self._handle.read(size)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


def test_sparse_lastlog_of_hundreds_of_gb_is_read_by_seeking(host, run_module, monkeypatch):
    size = acc.LASTLOG_RECORD.size
    path = host / "lastlog"
    with open(path, "r+b") as handle:
        handle.truncate((DIRECTORY_UID + 1) * size)
        handle.seek(DIRECTORY_UID * size)
        handle.write(acc.LASTLOG_RECORD.pack(int(NOW), b"pts/3", b"198.51.100.9"))
    assert os.stat(path).st_size > 400 * 10 ** 9
    real_open = open

    def bounded_open(name, mode="r", *rest, **kwargs):
        handle = real_open(name, mode, *rest, **kwargs)
        return _BoundedReads(handle) if str(name) == str(path) else handle

    monkeypatch.setattr(stale_accounts, "open", bounded_open, raising=False)
    result, failed = run_module(stale_accounts, args(host), check_mode=True)
    assert not failed, result
    found = by_subject(result)
    # alice's record (UID 1001) was read: she is active; bob's (1002) is 400 days old
    assert ("ACC-001", "alice") not in found
    assert found[("ACC-001", "bob")]["status"] == "fail"
    assert "lastlog" in found[("ACC-001", "bob")]["evidence"]


def test_guard_is_armed_after_the_archives_are_written(host, run_module, monkeypatch):
    """The guard's timer may restore /etc/passwd: it must not run while homes are still
    being archived, so the archives come first, then the guard, then the removals."""
    from ansible_collections.yoroi.baseline.plugins.module_utils import _guard

    events = []
    real_archive = stale_accounts.archive_account

    def archive(module, account, archive_dir):
        path = real_archive(module, account, archive_dir)
        events.append(("archive", account.name))
        return path

    def arm(module, paths, services, timeout, *rest):
        archives = sorted(p.name for p in (host / "archive").iterdir()) if (host / "archive").exists() else []
        events.append(("arm", tuple(archives)))
        return {"token": "t-1", "unit": "u", "dir": "d"}

    monkeypatch.setattr(stale_accounts, "archive_account", archive)
    monkeypatch.setattr(_guard, "arm", arm)
    result, failed = run_module(stale_accounts, args(host, guard_timeout=120,
                                                     policy={"stale": "remove", "never_used": "remove"}))
    assert not failed, result
    assert [e[0] for e in events] == ["archive", "archive", "arm"], events
    assert len(events[2][1]) == 2, "the guard was armed before both archives were complete"
    assert result["guard_token"] == "t-1"
    calls = (host / "calls").read_text().splitlines()
    assert "userdel --remove bob" in calls and "userdel --remove carol" in calls


def _give_key(host, name):
    ssh = host / "home" / name / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB %s@laptop\n" % name)


def test_key_holder_without_login_record_is_reported_not_locked(host, run_module):
    """bookworm writes no lastlog/wtmp record for a key login without a terminal: carol,
    who holds a key, may use the host every day and still look never used."""
    _give_key(host, "carol")
    result, failed = run_module(stale_accounts, args(host))
    assert not failed, result
    carol = by_subject(result)[("ACC-002", "carol")]
    assert carol["status"] == "fail" and "holds an SSH key" in carol["evidence"]
    calls = (host / "calls").read_text()
    assert " carol" not in calls
    assert "usermod --lock --expiredate 1 bob" in calls  # no key: locked as before


def test_sshd_log_shows_a_key_holder_active(host, run_module):
    _give_key(host, "carol")
    (host / "journal").write_text(
        "%d.000001 web1 sshd[171]: Accepted publickey for carol from 192.0.2.5 port 50610 ssh2: ED25519 SHA256:x\n"
        % int(NOW - 3 * acc.DAY))
    result, failed = run_module(stale_accounts, args(host), check_mode=True)
    assert not failed, result
    assert ("ACC-002", "carol") not in by_subject(result)


def test_key_holder_is_locked_when_the_sshd_log_covers_the_window_and_shows_no_login(host, run_module):
    _give_key(host, "carol")
    (host / "journal-old").write_text("%d.000001 web1 systemd[1]: Started.\n" % int(NOW - 200 * acc.DAY))
    result, failed = run_module(stale_accounts, args(host))
    assert not failed, result
    assert by_subject(result)[("ACC-002", "carol")]["status"] == "fixed"
    assert "usermod --lock --expiredate 1 carol" in (host / "calls").read_text()
