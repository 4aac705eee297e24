"""The lockout guard: the restore script is run for real with /bin/sh on a temp tree;
only systemd (systemd-run, systemctl) is recorded instead of run - the lab tests run it."""

import json
import os
import subprocess

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard


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
            proc = subprocess.run(argv, capture_output=True, text=True,
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
    assert "cp -p \"$dir\"/file-0 /etc/ssh/sshd_config.d/00-yoroi.conf.yoroi-guard && mv -f" in script
    assert "rm -f '/etc/issue net'" in script
    assert "systemctl reload-or-restart ssh" in script
    assert script.index("flock 9") < script.index("cp -p")
    # a confirmed change is left alone unless forced
    assert 'if [ "$state" = confirmed ] && [ "$force" != --force ]; then exit 0; fi' in script


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


def test_arm_fails_cleanly_when_systemd_run_fails(tree):
    module = tree["module"]
    module.systemd_rc = 1
    with pytest.raises(guard.GuardError, match="systemd-run"):
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
