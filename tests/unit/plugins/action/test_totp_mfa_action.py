"""The controller half of totp_mfa: host data that becomes paths, secrets that never leave it."""

import json
import os
from unittest import mock

import pytest

from ansible_collections.yoroi.baseline.plugins.action import totp_mfa as action

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER = "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TF"


def test_uri_file_is_private_and_inside_the_directory(tmp_path):
    root = tmp_path / "otp"
    path = action.write_private(str(root), "web1", "alice", "otpauth://x\n")
    assert path == str(root / "web1" / "alice.otpauth")
    assert open(path).read() == "otpauth://x\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(root / "web1").st_mode & 0o777) == "0o700"
    assert sorted(os.listdir(root / "web1")) == ["alice.otpauth"]


@pytest.mark.parametrize("host,user", [("web1", "../../../x"), ("web1", "../x"), ("../..", "x"), ("web1", "a/../../x")])
def test_a_hostile_name_writes_nothing_outside(tmp_path, host, user):
    root = tmp_path / "a" / "b" / "otp"
    root.mkdir(parents=True)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError):
        action.write_private(str(root), host, user, "otpauth://x\n")
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_link_at_the_uri_path_is_replaced_not_followed(tmp_path):
    root = tmp_path / "otp"
    (root / "web1").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    os.symlink(victim, root / "web1" / "alice.otpauth")
    action.write_private(str(root), "web1", "alice", "otpauth://x\n")
    assert victim.read_text() == "keep\n"
    assert not os.path.islink(root / "web1" / "alice.otpauth")


def test_a_host_directory_that_is_a_link_is_refused(tmp_path):
    root = tmp_path / "otp"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "web1")
    with pytest.raises(ValueError):
        action.write_private(str(root), "web1", "alice", "otpauth://x\n")
    assert os.listdir(elsewhere) == []


def _module_result():
    return {
        "changed": True,
        "enrolled": [{"user": "alice", "path": "/home/alice/.google_authenticator"},
                     {"user": "../../../x", "path": "/home/x/.google_authenticator"}],
        "handoff": [{"user": "alice", "secret": SECRET, "digest": "d-alice"},
                    {"user": "../../../x", "secret": OTHER, "digest": "d-x"}],
        "findings": [
            {"control": "MFA-002", "status": "fixed", "subject": "alice", "actual": "enrolled", "evidence": ""},
            {"control": "MFA-002", "status": "fixed", "subject": "../../../x", "actual": "enrolled", "evidence": ""},
        ],
    }


def _plugin(results, args):
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = False
    task.diff = False
    plugin = action.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                                 shared_loader_obj=None)
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append(module_args)
        return results.pop(0)

    plugin._execute_module = execute
    plugin._remove_tmp_path = lambda path: None
    return plugin, calls


def test_run_saves_confirms_and_returns_no_secret(tmp_path):
    root = tmp_path / "otp"
    args = {"groups": ["mfa-users"], "automation_account": "yoroi", "enrollment_dir": str(root), "issuer": "Yoroi"}
    plugin, calls = _plugin([_module_result(), {"changed": True, "confirmed": ["alice"], "findings": []}], args)
    result = plugin.run(task_vars={"inventory_hostname": "web1"})

    uri = (root / "web1" / "alice.otpauth").read_text()
    assert uri.startswith("otpauth://totp/Yoroi:alice%40web1?secret=" + SECRET + "&")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["alice.otpauth", "otp", "web1"]
    assert calls[1]["confirm"] == [{"user": "alice", "digest": "d-alice"}]
    text = json.dumps(result)
    assert SECRET not in text and OTHER not in text and "handoff" not in result
    status = dict((f["subject"], f["status"]) for f in result["findings"])
    assert status == {"alice": "fixed", "../../../x": "error"}
    assert any("../../../x" in w for w in result["warnings"])


def test_an_unconfirmed_save_is_an_error_finding(tmp_path):
    args = {"groups": ["g"], "automation_account": "yoroi", "enrollment_dir": str(tmp_path / "otp")}
    plugin, calls = _plugin([_module_result(), {"failed": True, "msg": "host unreachable"}], args)
    result = plugin.run(task_vars={"inventory_hostname": "web1"})
    alice = [f for f in result["findings"] if f["subject"] == "alice"][0]
    assert alice["status"] == "error" and "host unreachable" in alice["evidence"]


def test_no_directory_means_no_enrolment(tmp_path):
    plugin, calls = _plugin([{"changed": False, "findings": []}], {"groups": ["g"], "automation_account": "yoroi"})
    result = plugin.run(task_vars={"inventory_hostname": "web1"})
    assert calls[0]["enroll"] is False and result["warnings"]


def test_raw_module_output_never_leaves_the_plugin(tmp_path):
    failed = {"failed": True, "msg": "MODULE FAILURE", "module_stdout": '{"handoff": [{"secret": "%s"' % SECRET}
    plugin, calls = _plugin([failed], {"groups": ["g"], "automation_account": "yoroi", "enrollment_dir": str(tmp_path)})
    result = plugin.run(task_vars={"inventory_hostname": "web1"})
    assert result["failed"] and SECRET not in json.dumps(result)
    leaked = action.withhold_secrets({"msg": "oops " + SECRET}, [SECRET])
    assert leaked["failed"] and SECRET not in json.dumps(leaked)


def test_async_is_refused_before_the_module_runs(tmp_path):
    """An async job writes the module's whole result to a file on the host: the secrets too.
    The action declares no async support, so Ansible refuses it before the module runs."""
    plugin, calls = _plugin([_module_result()], {"groups": ["g"], "automation_account": "yoroi",
                                                 "enrollment_dir": str(tmp_path)})
    plugin._task.async_val = 300
    from ansible.errors import AnsibleActionFail
    with pytest.raises(AnsibleActionFail, match="does not support async"):
        plugin.run(task_vars={"inventory_hostname": "web1"})  # Ansible refuses: the action declares no async
    assert calls == []
