"""The controller half of the check-mode batch: which tasks are deferred, and where their
calls wait for the play's last task."""

import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.yoroi.baseline.plugins.plugin_utils import _deferred


@pytest.fixture
def local_tmp(tmp_path, monkeypatch):
    """Ansible's per-run private directory (ansible-local-*, 0700)."""
    run = tmp_path / "ansible-local-123"
    run.mkdir(mode=0o700)
    monkeypatch.setattr(_deferred.C, "DEFAULT_LOCAL_TMP", str(run))
    return run


def task(action="yoroi.baseline.kernel_hardening", check_mode=True, **kwargs):
    fields = dict(action=action, resolved_action=action, check_mode=check_mode, no_log=False, async_val=0,
                  delegate_to=None, loop=None, args={"sysctl": {}, "block_firewire": True}, name="Harden the kernel")
    fields.update(kwargs)
    return SimpleNamespace(**fields)


ON = {"yoroi_batch_checks": True}


@pytest.mark.parametrize("changes, task_vars, deferred", [
    ({}, ON, True),
    ({"action": "yoroi.baseline.totp_mfa", "resolved_action": "yoroi.baseline.totp_mfa"}, ON, True),
    ({"check_mode": False}, ON, False),                     # an apply runs every module in its role
    ({}, {}, False),                                        # the play did not ask for the batch
    ({}, {"yoroi_batch_checks": False}, False),             # -e yoroi_batch_checks=false
    ({}, {"yoroi_batch_checks": "false"}, False),
    ({"action": "yoroi.baseline.asset_info", "resolved_action": "yoroi.baseline.asset_info"}, ON, False),
    ({"action": "ansible.builtin.command", "resolved_action": "ansible.builtin.command"}, ON, False),
    ({"no_log": True}, ON, False),                         # its result must stay hidden: run it alone
    ({"async_val": 30}, ON, False),
    ({"delegate_to": "other"}, ON, False),                   # it runs on another host
    ({"loop": ["a", "b"]}, ON, False),
])
def test_which_tasks_are_deferred(changes, task_vars, deferred):
    assert _deferred.should_defer(task(**changes), task_vars) is deferred


def test_a_deferred_call_waits_in_the_runs_private_directory_and_is_taken_once(local_tmp):
    result = _deferred.defer(task(), "web1", ON)
    assert result["deferred"] and result["changed"] is False
    assert _deferred.defer(task(action="yoroi.baseline.sshd_hardening", resolved_action="yoroi.baseline.sshd_hardening",
                                args={"x11_forwarding": False}, name="Harden sshd"), "web1", ON)
    assert _deferred.defer(task(), "web2", ON)
    store = local_tmp / "yoroi-deferred"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in store.iterdir())
    calls = _deferred.take("web1")
    assert calls == [
        {"module": "kernel_hardening", "args": {"sysctl": {}, "block_firewire": True}, "task": "Harden the kernel",
         "secrets": {}},
        {"module": "sshd_hardening", "args": {"x11_forwarding": False}, "task": "Harden sshd", "secrets": {}},
    ]
    assert _deferred.take("web1") == []  # taken once
    assert [call["module"] for call in _deferred.take("web2")] == ["kernel_hardening"]
    assert list(store.iterdir()) == []


def test_mfa_defers_the_arguments_its_action_adjusted(local_tmp):
    _deferred.defer(task(action="yoroi.baseline.totp_mfa", resolved_action="yoroi.baseline.totp_mfa"), "web1", ON,
                    args={"enroll": False})
    assert _deferred.take("web1")[0]["args"] == {"enroll": False}


@pytest.mark.parametrize("host", ["../../etc/cron.d/x", "a/b", "*", "line\nbreak", ".", ""])
def test_a_host_name_never_becomes_a_path(local_tmp, host):
    _deferred.defer(task(), host, ON)
    (entry,) = list((local_tmp / "yoroi-deferred").iterdir())
    assert len(entry.name) == 64 + len(".jsonl")
    assert [call["module"] for call in _deferred.take(host)] == ["kernel_hardening"]
    assert sorted(os.listdir(local_tmp)) == ["yoroi-deferred"]


def test_a_link_planted_for_a_host_is_not_followed(local_tmp, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    _deferred.defer(task(), "web1", ON)
    _deferred.take("web1")
    os.symlink(victim, _deferred._host_file("web1"))
    with pytest.raises(OSError):
        _deferred.defer(task(), "web1", ON)
    with pytest.raises(OSError):
        _deferred.take("web1")
    assert victim.read_text() == "keep\n"


def test_a_secret_option_is_kept_apart_from_the_arguments(local_tmp):
    backup = task(action="yoroi.baseline.restic_backup", resolved_action="yoroi.baseline.restic_backup",
                  args={"repository": "/srv/restic", "password": "hunter2", "environment": {"K": "v"}}, name="Backup")
    _deferred.defer(backup, "web1", ON)
    (call,) = _deferred.take("web1")
    assert call["args"] == {"repository": "/srv/restic"}
    assert call["secrets"] == {"password": "hunter2", "environment": {"K": "v"}}
