"""The lockout guard: the restore script is run for real with /bin/sh on a temp tree;
only systemd (systemd-run, systemctl) is recorded instead of run - the lab tests run it."""

import json
import os
import subprocess

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard
from ansible_collections.yoroi.baseline.plugins.module_utils import _lock


class FakeModule(object):
    """run_command runs /bin/sh for real and records systemd calls (rc 0)."""

    def __init__(self, systemd_rc=0):
        self.calls = []
        self.systemd_rc = systemd_rc

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/bin/" + name

    def run_command(self, argv, environ_update=None, **kwargs):
        self.calls.append(list(argv))
        if argv[0] == "/bin/sh":
            proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  env=dict(os.environ, PATH=self.shim_dir + ":" + os.environ["PATH"]))
            return proc.returncode, proc.stdout, proc.stderr
        return self.systemd_rc, "", "systemd says no" if self.systemd_rc else ""


@pytest.fixture
def tree(tmp_path):
    """A file that exists, one that does not, a guard root, and a fake `systemctl` shim
    on PATH for the restore script (it logs its arguments)."""
    etc = tmp_path / "etc"
    etc.mkdir()
    existing = etc / "sshd_config"
    existing.write_text("old\n")
    os.chmod(existing, 0o640)
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "systemctl.log"
    (shim / "systemctl").write_text("#!/bin/sh\necho \"$@\" >> %s\n" % log)
    os.chmod(shim / "systemctl", 0o755)
    module = FakeModule()
    module.shim_dir = str(shim)
    return {"existing": existing, "missing": etc / "issue net", "root": tmp_path / "guard", "module": module, "log": log}


def test_token_is_checked_before_it_names_a_path():
    assert guard.TOKEN_RE.match(guard.new_token(0))
    assert guard.new_token(0).startswith("19700101T000000Z-")
    for bad in ("", "../etc", "a/b", "x;rm -rf /", "-lead"):
        with pytest.raises(guard.GuardError):
            guard.guard_dir(bad)


def test_script_restores_existing_files_removes_new_ones_and_reloads():
    script = guard.render_restore_script("/var/lib/yoroi/guard/T", [
        {"path": "/etc/ssh/sshd_config.d/00-yoroi.conf", "backup": "file-0"},
        {"path": "/etc/issue net", "backup": None},
    ], ["ssh"])
    assert "cp -p \"$dir\"/file-0 /etc/ssh/sshd_config.d/00-yoroi.conf.yoroi-guard && mv -fT" in script
    assert "rm -f '/etc/issue net'" in script
    assert "systemctl reload-or-restart ssh" in script
    assert script.index("flock 9") < script.index("cp -p")
    # the host-wide lock, the one every changing module run holds, is taken first
    assert "host_lock=%s" % _lock.HOST_LOCK in script  # (a temp path here: see plugins/conftest.py)
    assert script.index("flock -w") < script.index("flock 9")
    # only an armed change is restored unless forced (confirmed, restore_failed: by hand)
    assert 'if [ "$state" != armed ] && [ "$by" != force ]; then exit 0; fi' in script


def test_systemd_run_argv_is_a_transient_timer():
    argv = guard.systemd_run_argv("/usr/bin/systemd-run", "T-1", "/g/T-1/restore.sh", 45)
    assert argv[1] == "--unit=yoroi-guard-T-1"
    assert "--on-active=45s" in argv
    assert argv[-2:] == ["/bin/sh", "/g/T-1/restore.sh"]


def test_arm_backs_up_and_schedules(tree):
    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"]), str(tree["missing"])], ["ssh"], 30, str(tree["root"]))
    directory = armed["dir"]
    assert armed["unit"] == "yoroi-guard-" + armed["token"]
    assert os.stat(directory).st_mode & 0o777 == 0o700
    manifest = json.load(open(os.path.join(directory, "manifest.json")))
    assert [e["existed"] for e in manifest["paths"]] == [True, False]
    backup = os.path.join(directory, manifest["paths"][0]["backup"])
    assert open(backup).read() == "old\n" and os.stat(backup).st_mode & 0o777 == 0o640
    assert module.calls[-1][0].endswith("systemd-run") and "--on-active=30s" in module.calls[-1]
    assert guard.read_status(armed["token"], str(tree["root"]))["state"] == guard.ARMED


def test_timer_firing_restores_everything(tree):
    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"]), str(tree["missing"])], ["ssh"], 30, str(tree["root"]))
    tree["existing"].write_text("new, broken\n")
    tree["missing"].write_text("created by the change\n")
    # what the transient service runs when the timer fires
    subprocess.run(["/bin/sh", os.path.join(armed["dir"], "restore.sh")], check=True,
                   env=dict(os.environ, PATH=module.shim_dir + ":" + os.environ["PATH"]))
    assert tree["existing"].read_text() == "old\n"
    assert os.stat(tree["existing"]).st_mode & 0o777 == 0o640
    assert not tree["missing"].exists()
    assert tree["log"].read_text() == "reload-or-restart ssh\n"
    status = guard.read_status(armed["token"], str(tree["root"]))
    assert status["state"] == guard.ROLLED_BACK and status["rolled_back_at"]
    # confirming afterwards does not pretend it held
    confirmed = guard.confirm(module, armed["token"], str(tree["root"]))
    assert confirmed["state"] == guard.ROLLED_BACK and confirmed["previous"] == guard.ROLLED_BACK


def test_confirm_keeps_the_change_and_the_backups(tree):
    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, str(tree["root"]))
    tree["existing"].write_text("new, good\n")
    status = guard.confirm(module, armed["token"], str(tree["root"]))
    assert status["state"] == guard.CONFIRMED and status["previous"] == guard.ARMED
    assert module.calls[-1] == ["/usr/bin/systemctl", "stop", armed["unit"] + ".timer"]
    # the timer firing late (already running when stopped) changes nothing
    subprocess.run(["/bin/sh", os.path.join(armed["dir"], "restore.sh")], check=True,
                   env=dict(os.environ, PATH=module.shim_dir + ":" + os.environ["PATH"]))
    assert tree["existing"].read_text() == "new, good\n"
    assert os.path.exists(os.path.join(armed["dir"], "file-0"))


def test_rollback_restores_now_even_when_confirmed_and_once_only(tree):
    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, str(tree["root"]))
    tree["existing"].write_text("new\n")
    guard.confirm(module, armed["token"], str(tree["root"]))
    status = guard.rollback(module, armed["token"], str(tree["root"]))
    assert status["state"] == guard.ROLLED_BACK and status["previous"] == guard.CONFIRMED
    assert tree["existing"].read_text() == "old\n"
    calls = len(module.calls)
    again = guard.rollback(module, armed["token"], str(tree["root"]))
    assert again["previous"] == guard.ROLLED_BACK
    assert not any(c[0] == "/bin/sh" for c in module.calls[calls:])


def test_arm_fails_cleanly_when_systemd_fails(tree):
    module = tree["module"]
    module.systemd_rc = 1
    with pytest.raises(guard.GuardError, match="systemctl could not enable"):
        guard.arm(module, [str(tree["existing"])], ["ssh"], 30, str(tree["root"]))
    assert os.listdir(str(tree["root"])) == []


def test_short_timeouts_are_refused(tree):
    with pytest.raises(guard.GuardError, match="at least 10"):
        guard.arm(tree["module"], [str(tree["existing"])], [], 5, str(tree["root"]))


def test_unknown_token(tree):
    with pytest.raises(guard.GuardError, match="no lockout guard"):
        guard.confirm(tree["module"], "20260101T000000Z-00000000", str(tree["root"]))


def test_prune_removes_only_old_finished_guards(tree):
    module = tree["module"]
    root = str(tree["root"])
    old_done = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, root)
    guard.confirm(module, old_done["token"], root)
    old_armed = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, root)
    fresh_done = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, root)
    guard.confirm(module, fresh_done["token"], root)
    long_ago = os.stat(os.path.join(old_done["dir"], "state")).st_mtime - 31 * 86400
    for armed in (old_done, old_armed):
        os.utime(os.path.join(armed["dir"], "state"), (long_ago, long_ago))
    assert guard.prune(root) == [old_done["token"]]
    assert not os.path.exists(old_done["dir"])
    assert os.path.exists(old_armed["dir"]) and os.path.exists(fresh_done["dir"])
    assert guard.prune(root) == []


# --- a failed restore, reboots, leftovers, connections ---------------------------------


def run_restore(tree, armed, *args):
    return subprocess.run(["/bin/sh", os.path.join(armed["dir"], "restore.sh"), *args], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PATH=tree["module"].shim_dir + ":" + os.environ["PATH"]))


def test_a_restore_whose_copy_fails_is_restore_failed_not_rolled_back(tree):
    module = tree["module"]
    root = str(tree["root"])
    armed = guard.arm(module, [str(tree["existing"]), str(tree["missing"])], ["ssh"], 30, root)
    # a directory where the file was: a plain `mv -f` would move the copy INTO it and "succeed"
    os.remove(str(tree["existing"]))
    os.mkdir(str(tree["existing"]))
    tree["missing"].write_text("created by the change\n")
    proc = run_restore(tree, armed)
    assert proc.returncode != 0
    status = guard.read_status(armed["token"], root)
    assert status["state"] == guard.RESTORE_FAILED and status["restore_failed_at"]
    assert "rolled_back_at" not in status
    assert status["failed"] == [{"kind": "file", "name": str(tree["existing"])}]
    assert status["restored_by"] == "timer"
    assert not tree["missing"].exists()  # what could be restored was
    # the timer (or the boot unit) does not retry by itself; rollback() does, and reports it
    assert run_restore(tree, armed, "--boot").returncode == 0
    again = guard.rollback(module, armed["token"], root)
    assert again["state"] == guard.RESTORE_FAILED and again["previous"] == guard.RESTORE_FAILED
    assert again["restored_by"] == "force"
    os.rmdir(str(tree["existing"]))
    fixed = guard.rollback(module, armed["token"], root)
    assert fixed["state"] == guard.ROLLED_BACK and fixed["failed"] == []
    assert tree["existing"].read_text() == "old\n"


def test_a_unit_that_cannot_reload_is_a_failed_restore(tree):
    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, str(tree["root"]))
    with open(os.path.join(module.shim_dir, "systemctl"), "w") as shim:
        shim.write("#!/bin/sh\nexit 1\n")
    assert run_restore(tree, armed).returncode != 0
    status = guard.read_status(armed["token"], str(tree["root"]))
    assert status["state"] == guard.RESTORE_FAILED and status["failed"] == [{"kind": "unit", "name": "ssh"}]


def test_restore_waits_for_the_host_lock(tree, guard_host):
    import fcntl

    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"])], [], 30, str(tree["root"]))
    script = open(os.path.join(armed["dir"], "restore.sh")).read()
    assert "host_lock=%s" % guard_host["host_lock"] in script
    tree["existing"].write_text("new\n")
    with open(str(guard_host["host_lock"]), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(["/bin/sh", os.path.join(armed["dir"], "restore.sh")],
                                env=dict(os.environ, PATH=module.shim_dir + ":" + os.environ["PATH"]))
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)  # still waiting: nothing restored while the lock is held
        assert tree["existing"].read_text() == "new\n"
    assert proc.wait(timeout=30) == 0
    assert tree["existing"].read_text() == "old\n"


def test_a_module_rolling_back_under_the_host_lock_does_not_wait_for_itself(tree, guard_host, monkeypatch):
    """password_policy and sshd_hardening undo a failed change inside Concern.changing,
    holding the host lock: the restore they start must not wait for that lock (it would
    wait HOST_LOCK_WAIT seconds on another descriptor, then restore anyway)."""
    from ansible_collections.yoroi.baseline.plugins.module_utils import _lock

    module = tree["module"]
    armed = guard.arm(module, [str(tree["existing"])], [], 30, str(tree["root"]))
    tree["existing"].write_text("new\n")
    plain = module.run_command
    module.run_command = lambda argv, environ_update=None: _timed_run(argv, module) if argv[0] == "/bin/sh" else plain(argv)
    with _lock.host_lock("password_policy", path=str(guard_host["host_lock"])):
        status = guard.rollback(module, armed["token"], str(tree["root"]), lock_held=True)
    assert status["state"] == guard.ROLLED_BACK
    assert tree["existing"].read_text() == "old\n"


def _timed_run(argv, module):
    # the restore must finish at once; a wait for the lock would hit this timeout
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20,
                          env=dict(os.environ, PATH=module.shim_dir + ":" + os.environ["PATH"]))
    return proc.returncode, proc.stdout, proc.stderr


def test_arm_installs_the_boot_unit_once(tree, guard_host):
    module = tree["module"]
    root = str(tree["root"])
    guard.arm(module, [str(tree["existing"])], ["ssh"], 30, root)
    unit = guard_host["units"] / guard.BOOT_UNIT
    assert unit.read_text() == guard.render_boot_unit(root)
    assert ["/usr/bin/systemctl", "enable", guard.BOOT_UNIT] in module.calls
    # enabled (what `systemctl enable` does): the next arm does not touch it again
    wants = guard_host["units"] / "multi-user.target.wants"
    wants.mkdir()
    (wants / guard.BOOT_UNIT).symlink_to(unit)
    calls = len(module.calls)
    guard.arm(module, [str(tree["existing"])], ["ssh"], 30, root)
    assert not any(c[1:2] == ["enable"] for c in module.calls[calls:])


def test_boot_unit_runs_each_armed_guards_restore():
    text = guard.render_boot_unit("/var/lib/yoroi/guard")
    assert "WantedBy=multi-user.target" in text and "Type=oneshot" in text
    (execstart,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert '"/var/lib/yoroi/guard"/*/' in execstart and '--boot' in execstart
    assert "= armed ]" in execstart
    with pytest.raises(guard.GuardError):
        guard.render_boot_unit("/var/lib/yoroi/gu'ard")


def boot(root, shim_dir):
    """What the boot unit runs: its ExecStart command line, unescaped as systemd does."""
    (execstart,) = [line for line in guard.render_boot_unit(root).splitlines() if line.startswith("ExecStart=")]
    command = execstart[len("ExecStart=/bin/sh -c '"):-1].replace("$$", "$")
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False,
                          env=dict(os.environ, PATH=shim_dir + ":" + os.environ["PATH"]))


def test_at_boot_armed_guards_are_restored_and_confirmed_ones_never(tree, tmp_path):
    module = tree["module"]
    root = str(tree["root"])
    kept = tmp_path / "kept.conf"
    kept.write_text("before the confirmed change\n")
    confirmed = guard.arm(module, [str(kept)], [], 30, root)
    kept.write_text("confirmed change\n")
    guard.confirm(module, confirmed["token"], root)
    armed = guard.arm(module, [str(tree["existing"])], ["ssh"], 30, root)
    tree["existing"].write_text("change nobody confirmed before the reboot\n")
    assert boot(root, module.shim_dir).returncode == 0
    assert tree["existing"].read_text() == "old\n"
    assert kept.read_text() == "confirmed change\n"
    status = guard.read_status(armed["token"], root)
    assert status["state"] == guard.ROLLED_BACK and status["restored_by"] == "boot"
    assert guard.read_status(confirmed["token"], root)["state"] == guard.CONFIRMED
    # a second boot changes nothing
    tree["existing"].write_text("changed later, by hand\n")
    assert boot(root, module.shim_dir).returncode == 0
    assert tree["existing"].read_text() == "changed later, by hand\n"


def test_leftover_finds_guards_armed_past_their_deadline_and_failed_restores(tree):
    module = tree["module"]
    root = str(tree["root"])
    done = guard.arm(module, [str(tree["existing"])], [], 30, root)
    guard.confirm(module, done["token"], root)
    stuck = guard.arm(module, [str(tree["existing"])], [], 30, root)
    broken = guard.arm(module, [str(tree["missing"])], [], 30, root)
    os.mkdir(str(tree["missing"]))
    with open(os.path.join(str(tree["missing"]), "x"), "w"):
        pass  # rm -f cannot remove a non-empty directory
    assert run_restore(tree, broken).returncode != 0
    due = guard.deadline(guard.read_status(stuck["token"], root))
    # a guard armed by a run still in progress (or whose restore may be waiting) is not left over
    assert [s["token"] for s in guard.leftover(root, now=due + guard.LEFTOVER_GRACE)] == [broken["token"]]
    late = [s["token"] for s in guard.leftover(root, now=due + guard.LEFTOVER_GRACE + 1)]
    assert late == sorted([stuck["token"], broken["token"]])
    assert guard.leftover(str(tree["root"] / "none"), now=0) == []


def test_deadline_is_creation_plus_timeout():
    assert guard.deadline({"created": "1970-01-01T00:01:00Z", "timeout": 30}) == 90


@pytest.mark.parametrize("connection,proves", [
    ("ssh", True), ("ansible.builtin.ssh", True), ("paramiko", True), ("paramiko_ssh", True), ("smart", True),
    (None, True), ("local", False), ("ansible.builtin.local", False), ("containers.podman.podman", False),
    ("podman", False), ("community.docker.docker", False), ("docker", False), ("community.general.chroot", False),
    ("winrm", False),
])
def test_only_connections_through_sshd_prove_a_fresh_login(connection, proves):
    assert guard.proves_access(connection) is proves


def test_restore_works_when_the_host_lock_directory_did_not_exist(tree, monkeypatch, tmp_path):
    lock = tmp_path / "fresh" / "host.lock"
    monkeypatch.setattr(_lock, "HOST_LOCK", str(lock))
    armed = guard.arm(tree["module"], [str(tree["existing"])], [], 30, str(tree["root"]))
    tree["existing"].write_text("new\n")
    assert run_restore(tree, armed).returncode == 0
    assert tree["existing"].read_text() == "old\n" and lock.exists()
