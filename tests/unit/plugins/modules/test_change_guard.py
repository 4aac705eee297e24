"""change_guard through run_module on a temp guard root. systemd-run/systemctl are
recorded (rc 0); restore scripts run for real with a systemctl shim on PATH."""

import json
import os
import subprocess

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import change_guard


@pytest.fixture
def host(tmp_path, monkeypatch):
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "systemctl").write_text("#!/bin/sh\necho \"$@\" >> %s\n" % (tmp_path / "systemctl.log"))
    os.chmod(shim / "systemctl", 0o755)
    calls = []

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append(list(argv))
        if argv[0] == "/bin/sh":
            proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  env=dict(os.environ, PATH="%s:%s" % (shim, os.environ["PATH"])))
            return proc.returncode, proc.stdout, proc.stderr
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    conf = tmp_path / "nftables.conf"
    conf.write_text("old\n")
    return {"root": str(tmp_path / "guard"), "conf": conf, "calls": calls}


def arm(run_module, host):
    result, failed = run_module(change_guard, {"state": "armed", "paths": [str(host["conf"])],
                                               "reload_units": ["nftables"], "timeout": 60, "guard_root": host["root"]})
    assert not failed and result["changed"] and result["state"] == "armed"
    assert result["findings"] == []
    return result["token"]


def test_arm_then_confirm_passes_grd_001(run_module, host):
    token = arm(run_module, host)
    assert any("--on-active=60s" in c for c in host["calls"][-1])
    host["conf"].write_text("new\n")
    result, failed = run_module(change_guard, {"state": "confirmed", "token": token, "guard_root": host["root"]})
    assert not failed and result["changed"] and result["state"] == "confirmed"
    (item,) = result["findings"]
    assert item["control"] == "GRD-001" and item["status"] == "pass"
    assert host["calls"][-1][-2:] == ["stop", "yoroi-guard-%s.timer" % token]
    assert host["conf"].read_text() == "new\n"
    # confirming twice is not a change
    result, failed = run_module(change_guard, {"state": "confirmed", "token": token, "guard_root": host["root"]})
    assert not failed and not result["changed"]


def test_rolled_back_restores_and_reports_error(run_module, host):
    token = arm(run_module, host)
    host["conf"].write_text("new\n")
    result, failed = run_module(change_guard, {"state": "rolled_back", "token": token, "guard_root": host["root"],
                                               "reason": "Permission denied (publickey)"})
    assert not failed and result["changed"] and result["state"] == "rolled_back"
    (item,) = result["findings"]
    assert item["status"] == "error" and item["actual"] == "rolled back: Permission denied (publickey)"
    assert "now, by change_guard" in item["evidence"]
    assert host["conf"].read_text() == "old\n"
    # the rollback already happened (as when the timer fired): no change, same verdict
    result, failed = run_module(change_guard, {"state": "rolled_back", "token": token, "guard_root": host["root"]})
    assert not failed and not result["changed"] and "by the guard timer" in result["findings"][0]["evidence"]


def test_confirm_after_the_timer_fired_fails(run_module, host):
    token = arm(run_module, host)
    subprocess.run(["/bin/sh", os.path.join(host["root"], token, "restore.sh")], check=True,
                   env=dict(os.environ, PATH="%s:%s" % (os.path.join(os.path.dirname(host["root"]), "bin"), os.environ["PATH"])))
    result, failed = run_module(change_guard, {"state": "confirmed", "token": token, "guard_root": host["root"]})
    assert failed and result["msg"].startswith("change rolled back")
    assert result["findings"][0]["status"] == "error"


def test_check_mode_changes_nothing(run_module, host):
    token = arm(run_module, host)
    before = len(host["calls"])
    result, failed = run_module(change_guard, {"state": "confirmed", "token": token, "guard_root": host["root"]}, check_mode=True)
    assert not failed and result["changed"] and result["state"] == "armed"
    result, failed = run_module(change_guard, {"state": "armed", "paths": ["/etc/x"], "guard_root": host["root"]}, check_mode=True)
    assert not failed and result["changed"]
    assert len(host["calls"]) == before


def test_token_required_and_unknown_token(run_module, host):
    result, failed = run_module(change_guard, {"state": "confirmed", "guard_root": host["root"]})
    assert failed and "token" in result["msg"]
    result, failed = run_module(change_guard, {"state": "confirmed", "token": "20260101T000000Z-00000000", "guard_root": host["root"]})
    assert failed and "no lockout guard" in result["msg"]


def test_confirm_over_a_connection_without_sshd_is_not_proven(run_module, host, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    token = arm(run_module, host)
    host["conf"].write_text("new\n")
    result, failed = run_module(change_guard, {"state": "confirmed", "token": token, "guard_root": host["root"],
                                               "connection": "containers.podman.podman", "change": "sshd"})
    assert not failed and result["state"] == "confirmed"  # kept, the timer stopped: not left to roll back
    assert host["calls"][-1][-2:] == ["stop", "yoroi-guard-%s.timer" % token]
    (item,) = result["findings"]
    assert item["status"] == "skipped" and item["subject"] == "sshd"
    assert item["actual"] == "not proven: connection containers.podman.podman does not go through sshd and PAM"
    assert any("sshd change is kept but not proven" in w for w in warnings)
    assert host["conf"].read_text() == "new\n"


def break_restore(host):
    """A directory where the guarded file was: the restore cannot put it back."""
    host["conf"].unlink()
    host["conf"].mkdir()


def test_a_failed_restore_is_an_error_not_a_rollback(run_module, host):
    token = arm(run_module, host)
    break_restore(host)
    result, failed = run_module(change_guard, {"state": "rolled_back", "token": token, "guard_root": host["root"]})
    assert not failed and result["state"] == "restore_failed"
    (item,) = result["findings"]
    assert item["status"] == "error"
    assert item["actual"] == "restore failed: could not put back or reload file %s" % host["conf"]
    assert "rolled back" not in item["actual"]
    # confirming it afterwards fails the task with the same error
    result, failed = run_module(change_guard, {"state": "confirmed", "token": token, "guard_root": host["root"]})
    assert failed and result["msg"].startswith("change restore failed") and result["findings"][0]["status"] == "error"


def audit(run_module, host, check_mode=True):
    result, failed = run_module(change_guard, {"state": "audit", "guard_root": host["root"]}, check_mode=check_mode)
    assert not failed and not result["changed"]
    return result


def test_audit_reports_guards_left_unresolved_and_changes_nothing(run_module, host):
    (item,) = audit(run_module, host)["findings"]  # no guard root yet
    assert item["control"] == "GRD-002" and item["status"] == "pass"
    token = arm(run_module, host)
    assert [f["status"] for f in audit(run_module, host)["findings"]] == ["pass"]  # its deadline is ahead
    # as a reboot left it before the boot unit: armed, its timer gone, the deadline long past
    manifest = os.path.join(host["root"], token, "manifest.json")
    with open(manifest) as handle:
        data = json.load(handle)
    data["created"] = "2020-01-01T00:00:00Z"
    with open(manifest, "w") as handle:
        json.dump(data, handle)
    other = arm(run_module, host)
    break_restore(host)
    run_module(change_guard, {"state": "rolled_back", "token": other, "guard_root": host["root"]})
    before = len(host["calls"])
    for check_mode in (True, False):
        result = audit(run_module, host, check_mode)
        assert result["leftover"] == [token, other]
        stuck, broken = result["findings"]
        assert (stuck["control"], stuck["status"], stuck["subject"]) == ("GRD-002", "fail", token)
        assert "past its deadline" in stuck["actual"] and str(host["conf"]) in stuck["actual"]
        assert (broken["status"], broken["subject"]) == ("error", other)
        assert broken["actual"].startswith("restore failed")
    assert len(host["calls"]) == before  # read only: no systemctl, no restore
    assert json.load(open(manifest))["created"] == "2020-01-01T00:00:00Z"
    assert open(os.path.join(host["root"], token, "state")).read() == "armed\n"
