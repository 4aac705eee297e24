"""The file_permissions module on a tmp tree shaped like a bookworm host (run as root:
the tree's files are root's). Drift is planted; check mode changes nothing, apply fixes
it, a second apply changes nothing; symlinks are never followed."""

import os

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import file_permissions as mod

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sets owners: runs as root")

PASSWD = """root:x:0:0:root:/root:/bin/bash
alice:x:1000:1000::/home/alice:/bin/bash
bob:x:1001:1001::/home/bob:/bin/bash
deploy:x:1002:1002::/home/deploy:/bin/bash
"""
GROUP = "root:x:0:\nshadow:x:42:\nalice:x:1000:\nbob:x:1001:\ndeploy:x:1002:\n"
ARGS = {"contact": "desk@example.org", "automation_account": "deploy", "scan_paths": ["/etc", "/opt"], "skip_paths": []}


def put(root, path, text="", mode=0o644, uid=0, gid=0):
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    os.chown(target, uid, gid)
    os.chmod(target, mode)
    return target


def directory(root, path, mode, uid=0, gid=0):
    target = root / path.lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    os.chown(target, uid, gid)
    os.chmod(target, mode)
    return target


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "root"
    put(root, "/etc/passwd", PASSWD)
    put(root, "/etc/group", GROUP)
    put(root, "/etc/shadow", "root:*:1::::::\n", 0o644, gid=42)  # drift: world-readable
    put(root, "/etc/gshadow", "", 0o640, gid=42)
    put(root, "/etc/login.defs", "UMASK\t\t022\nUID_MIN\t1000\n")
    put(root, "/etc/ssh/ssh_host_ed25519_key", "secret", 0o640)
    put(root, "/etc/ssh/ssh_host_ed25519_key.pub", "public", 0o644)
    put(root, "/etc/crontab", "", 0o644)
    directory(root, "/etc/cron.d", 0o755)
    put(root, "/etc/cron.d/e2scrub_all", "", 0o644)
    put(root, "/etc/sudoers", "", 0o440)
    directory(root, "/etc/sudoers.d", 0o750)
    put(root, "/etc/sudoers.d/README", "", 0o440)
    put(root, "/etc/issue", "Debian GNU/Linux 12 \\n \\l\n\n")
    directory(root, "/root", 0o700)
    directory(root, "/home/alice", 0o755, 1000, 1000)  # drift
    directory(root, "/home/deploy", 0o755, 1002, 1002)  # protected: reported only
    # bob's home is a symlink to a file he wants made 0750 by root: never followed
    victim = put(root, "/srv/victim", "", 0o644)
    os.symlink(str(victim), root / "home/bob")
    # a symlink in a cron directory, to a file that must keep its mode
    target = put(root, "/srv/cron-target", "", 0o777)
    os.symlink(str(target), root / "etc/cron.d/planted")
    put(root, "/opt/orphan", "", 0o644, uid=4242, gid=4343)
    monkeypatch.setattr(mod, "ROOT", str(root))
    return root


def mode_of(root, path):
    return os.lstat(root / path.lstrip("/")).st_mode & 0o7777


def snapshot(root):
    found = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        found[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
    return found


def by(findings, control):
    return dict((f.get("subject"), f) for f in findings if f["control"] == control)


def test_check_mode_reports_drift_and_changes_nothing(tree, run_module):
    before = snapshot(tree)
    result, failed = run_module(mod, ARGS, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert snapshot(tree) == before
    prm1 = by(result["findings"], "PRM-001")
    assert prm1["/etc/shadow"]["status"] == "fail" and prm1["/etc/shadow"]["actual"] == "root:shadow 0644"
    assert prm1["/etc/gshadow"]["status"] == "pass"
    assert prm1["/etc/ssh/ssh_host_ed25519_key"]["status"] == "fail"
    assert "/etc/ssh/ssh_host_ed25519_key.pub" not in prm1
    assert prm1["/etc/cron.d"]["status"] == "fail" and prm1["/etc/crontab"]["status"] == "fail"
    assert prm1["/etc/cron.d/planted"]["status"] == "fail" and "not followed" in prm1["/etc/cron.d/planted"]["evidence"]
    assert prm1["/etc/cron.daily"]["status"] == "skipped"
    homes = by(result["findings"], "PRM-003")
    assert homes["/home/alice"]["status"] == "fail" and homes["/root"]["status"] == "pass"
    assert by(result["findings"], "PRM-004")["/opt/orphan"]["actual"] == "no owner (uid 4242), no group (gid 4343)"
    assert by(result["findings"], "BNR-001")["/etc/issue"]["status"] == "fail"
    assert by(result["findings"], "BNR-001")["/etc/issue.net"]["actual"] == "missing"
    assert [f["status"] for f in by(result["findings"], "PRM-002").values()] == ["fail", "fail"]
    assert any(d["before_header"] == "modes" for d in result["diff"])


def test_apply_fixes_then_second_run_changes_nothing(tree, run_module):
    result, failed = run_module(mod, ARGS)
    assert not failed and result["changed"], result
    statuses = dict(((f["control"], f.get("subject")), f["status"]) for f in result["findings"])
    assert statuses[("PRM-001", "/etc/shadow")] == "fixed" and mode_of(tree, "/etc/shadow") == 0o640
    assert os.stat(tree / "etc/shadow").st_gid == 42
    assert mode_of(tree, "/etc/ssh/ssh_host_ed25519_key") == 0o600
    assert mode_of(tree, "/etc/ssh/ssh_host_ed25519_key.pub") == 0o644
    assert mode_of(tree, "/etc/crontab") == 0o600 and mode_of(tree, "/etc/cron.d") == 0o700
    assert mode_of(tree, "/etc/sudoers") == 0o440 and mode_of(tree, "/etc/sudoers.d") == 0o750
    assert mode_of(tree, "/home/alice") == 0o750 and statuses[("PRM-003", "/home/alice")] == "fixed"
    # protected: reported, never changed
    assert mode_of(tree, "/home/deploy") == 0o755 and statuses[("PRM-003", "/home/deploy")] == "skipped"  # protected: exemption
    # symlinks: not followed, their targets keep their modes
    assert mode_of(tree, "/srv/victim") == 0o644 and mode_of(tree, "/srv/cron-target") == 0o777
    assert statuses[("PRM-003", "/home/bob")] == "fail" and statuses[("PRM-001", "/etc/cron.d/planted")] == "fail"
    # reported only
    assert os.lstat(tree / "opt/orphan").st_uid == 4242 and statuses[("PRM-004", "/opt/orphan")] == "fail"
    issue = (tree / "etc/issue").read_text()
    assert "desk@example.org" in issue and "Debian" not in issue and (tree / "etc/issue.net").read_text() == issue
    assert statuses[("BNR-001", "/etc/issue")] == "fixed"
    assert "UMASK\t\t027" in (tree / "etc/login.defs").read_text()
    assert (tree / "etc/profile.d/yoroi-umask.sh").read_text().endswith("umask 027\n")
    assert result["files"]["/etc/issue"]  # a backup of the old banner
    first = snapshot(tree)
    again, failed = run_module(mod, ARGS)
    assert not failed and not again["changed"] and again["modes"] == {} and again["files"] == {}
    assert snapshot(tree) == first
    assert "fixed" not in [f["status"] for f in again["findings"]]
    check, _failed = run_module(mod, ARGS, check_mode=True)
    assert not check["changed"]


def test_a_symlink_planted_after_the_read_is_not_followed(tree, run_module, monkeypatch):
    """The home is swapped for a symlink between the read and the change: the
    O_NOFOLLOW open refuses it, the finding is an error, the target keeps its mode."""
    victim = put(tree, "/srv/victim2", "", 0o755)
    real = mod.change_mode

    def swap(path, info, chmod, chown):
        if path == "/home/alice":
            os.rmdir(tree / "home/alice")
            os.symlink(str(victim), tree / "home/alice")
        return real(path, info, chmod, chown)

    monkeypatch.setattr(mod, "change_mode", swap)
    result, _failed = run_module(mod, ARGS)
    assert mode_of(tree, "/srv/victim2") == 0o755
    assert by(result["findings"], "PRM-003")["/home/alice"]["status"] == "error"


def test_a_bad_umask_is_refused(tree, run_module):
    result, failed = run_module(mod, dict(ARGS, umask="rw-"))
    assert failed and result["msg"].startswith("refused")
    assert set(f["status"] for f in result["findings"]) == {"error"}
