"""The totp_mfa module on a tmp tree: check mode, apply, second run, refusals.

sshd is not on the controller, so the composed candidate is judged by a stand-in that reads
the rendered drop-in the way sshd -T does for these cases (first match wins); the real
sshd -T runs in tests/infra/test_mfa.py.
"""

import collections
import os

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import totp_mfa as mod

PAM_SSHD = "# sshd\n@include common-auth\naccount required pam_nologin.so\n"
PAM_SUDO = "#%PAM-1.0\nsession required pam_limits.so\n@include common-auth\n@include common-account\n"
Pw = collections.namedtuple("Pw", "pw_name pw_uid pw_gid pw_dir pw_shell")


class FakeCandidate(object):
    def __init__(self, module, *args, **kwargs):
        self.text = args[-1]  # the candidate drop-in

    def test(self):
        return True, ""

    def effective(self, user=None, conn=None):
        address = conn["addr"] if isinstance(conn, dict) else conn
        values = {"usepam": "yes", "pubkeyauthentication": "yes", "passwordauthentication": "yes",
                  "kbdinteractiveauthentication": "no", "authenticationmethods": "any"}
        values.update(self.extra)
        if user is None:
            return values, ""
        block = None
        for line in self.text.splitlines():
            words = line.split()
            if words[:1] == ["Match"]:
                block = words
                continue
            if block is None or not words or words[0].startswith("#"):
                continue
            applies = ("User" in block and block[block.index("User") + 1] == user
                       and ("Address" not in block or address in block[block.index("Address") + 1].split(",")
                            or address.startswith("10.") and "10.0.0.0/8" in block[block.index("Address") + 1]))
            applies = applies or ("Group" in block and user in FakeCandidate.members)
            key = words[0].lower()
            if applies and key not in self.seen.get(user + address, set()):
                values[key] = " ".join(words[1:])
                self.seen.setdefault(user + address, set()).add(key)
        self.seen.pop(user + address, None)
        return values, ""

    seen = {}
    members = ()
    extra = {}

    def cleanup(self):
        pass


@pytest.fixture
def tree(tmp_path, monkeypatch):
    pam_d = tmp_path / "pam.d"
    pam_d.mkdir()
    (pam_d / "sshd").write_text(PAM_SSHD)
    (pam_d / "sudo").write_text(PAM_SUDO)
    for name in ("common-auth", "common-account"):
        (pam_d / name).write_text("auth required pam_unix.so\n")
    modules = tmp_path / "security"
    modules.mkdir()
    for name in ("pam_unix.so", "pam_nologin.so", "pam_limits.so", "pam_succeed_if.so", "pam_access.so",
                 "pam_google_authenticator.so"):
        (modules / name).write_bytes(b"\x7fELF")
    homes = {}
    for name in ("alice", "bob", "yoroi", "breakglass"):
        homes[name] = tmp_path / "home" / name
        homes[name].mkdir(parents=True)
    (homes["yoroi"] / ".ssh").mkdir()
    (homes["yoroi"] / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA yoroi\n")
    uid = os.getuid()
    users = dict((name, Pw(name, uid, os.getgid(), str(path), "/bin/sh")) for name, path in homes.items())

    class FakePwd(object):
        @staticmethod
        def getpwnam(name):
            if name not in users:
                raise KeyError(name)
            return users[name]

        @staticmethod
        def getpwall():
            return list(users.values())

    groups = {"mfa-users": (1500, ["alice", "bob"])}
    monkeypatch.setattr(mod, "pwd", FakePwd)
    monkeypatch.setattr(mod, "read_accounts", lambda names: (dict((g, groups[g]) for g in names if g in groups),
                                                             [tuple(u)[:4] for u in users.values()]))
    (tmp_path / "group").write_text("mfa-users:x:1500:alice,bob\nssh-users:x:1600:yoroi,breakglass,alice,bob\n")
    monkeypatch.setattr(mod, "GROUP", str(tmp_path / "group"))
    (tmp_path / "shadow").write_text("breakglass:$y$hash:20000::::::\nyoroi:*:20000::::::\n")
    monkeypatch.setattr(mod, "SHADOW", str(tmp_path / "shadow"))
    monkeypatch.setattr(mod, "PAM_SSHD", str(pam_d / "sshd"))
    monkeypatch.setattr(mod, "PAM_SUDO", str(pam_d / "sudo"))
    monkeypatch.setattr(mod, "PAM_MODULE_DIRS", (str(modules),))
    monkeypatch.setattr(mod, "Candidate", FakeCandidate)
    monkeypatch.setattr(mod, "sshd_validate", lambda module: None)
    monkeypatch.setattr(mod, "client_connections", lambda ports, address=None: [{"addr": "10.89.1.1"}])
    monkeypatch.setattr(mod, "PENDING_DIR", str(tmp_path / "pending"))
    # a host with an SSH server (the controller running the tests may have none)
    real_bin_path = basic.AnsibleModule.get_bin_path
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None:
                        "/usr/sbin/sshd" if name == "sshd" else real_bin_path(self, name, required, opt_dirs))
    reloads = []
    monkeypatch.setattr(mod, "reload_sshd", lambda module: reloads.append(1) or "reloaded")
    FakeCandidate.members = ("alice", "bob")
    FakeCandidate.extra = {}
    args = dict(groups=["mfa-users"], automation_account="yoroi", break_glass_accounts=["breakglass"],
                deadline="2099-01-01", exemptions=[{"user": "yoroi", "from": ["127.0.0.1", "10.0.0.0/8"]}],
                dropin=str(tmp_path / "sshd_config.d" / "50-yoroi-mfa.conf"), access_file=str(tmp_path / "exempt.conf"))
    return tmp_path, homes, args, reloads


def _by(result, control):
    return [f for f in result["findings"] if f["control"] == control]


def test_check_mode_writes_nothing_and_reports_drift(tree, run_module):
    tmp_path, homes, args, reloads = tree
    result, failed = run_module(mod, args, check_mode=True, diff=True)
    assert not failed, result["msg"]
    assert result["changed"]
    assert _by(result, "MFA-001")[0]["status"] == "fail"
    assert sorted(f["subject"] for f in _by(result, "MFA-002") if f["status"] == "fail") == ["alice", "bob"]
    assert not os.path.exists(args["dropin"]) and not os.path.exists(args["access_file"])
    assert (tmp_path / "pam.d" / "sshd").read_text() == PAM_SSHD
    assert not os.path.exists(homes["alice"] / ".google_authenticator")
    assert result["enrolled"] == [] and not reloads
    assert any("secret not shown" in d["after"] for d in result["diff"])


def test_apply_enrols_without_secrets_in_the_result_and_second_run_is_clean(tree, run_module):
    tmp_path, homes, args, reloads = tree
    result, failed = run_module(mod, args, diff=True)
    assert not failed, result
    assert result["changed"] and reloads == [1]
    assert sorted(e["user"] for e in result["enrolled"]) == ["alice", "bob"]
    secret_file = homes["alice"] / ".google_authenticator"
    assert oct(os.stat(secret_file).st_mode & 0o777) == "0o400"
    secret = secret_file.read_text().splitlines()[0]
    # the secret travels only in `handoff`, which the action plugin takes out on the controller
    assert secret not in repr(dict((k, v) for k, v in result.items() if k != "handoff"))
    confirmed, failed = run_module(mod, dict(args, confirm=[dict(user=h["user"], digest=h["digest"]) for h in result["handoff"]]))
    assert not failed and confirmed["changed"] and confirmed["confirmed"] == ["alice", "bob"]
    assert "pam_google_authenticator.so nullok" in (tmp_path / "pam.d" / "sshd").read_text()
    assert _by(result, "MFA-001")[0]["status"] == "fixed"
    assert [f["status"] for f in _by(result, "MFA-004")] == ["skipped"]
    assert _by(result, "MFA-005")[0]["status"] == "skipped"

    mtime = os.stat(args["dropin"]).st_mtime_ns
    again, failed = run_module(mod, args)
    assert not failed and not again["changed"] and again["enrolled"] == []
    assert os.stat(args["dropin"]).st_mtime_ns == mtime
    assert secret_file.read_text().splitlines()[0] == secret  # never rewritten
    assert {f["status"] for f in _by(again, "MFA-002")} == {"pass"}
    assert {f["status"] for f in _by(again, "MFA-003")} == {"pass"}


def test_past_deadline_drops_nullok_and_sudo_block_comes_and_goes(tree, run_module):
    tmp_path, homes, args, reloads = tree
    args = dict(args, deadline="2000-01-01", enroll=False, sudo=True)
    result, failed = run_module(mod, args)
    assert not failed and result["nullok"] is False
    pam = (tmp_path / "pam.d" / "sshd").read_text()
    assert "pam_google_authenticator.so\n" in pam and "nullok" not in pam
    assert "MFA required since 2000-01-01" in _by(result, "MFA-002")[0]["actual"]
    sudo = (tmp_path / "pam.d" / "sudo").read_text()
    assert "user in yoroi" in sudo and _by(result, "MFA-005")[0]["status"] == "fixed"
    result, failed = run_module(mod, dict(args, sudo=False))
    assert (tmp_path / "pam.d" / "sudo").read_text() == PAM_SUDO


def test_automation_account_in_a_group_without_exemption_is_refused(tree, run_module, monkeypatch):
    tmp_path, homes, args, reloads = tree
    users = [tuple(u)[:4] for u in mod.pwd.getpwall()]
    monkeypatch.setattr(mod, "read_accounts", lambda names: ({"mfa-users": (1500, ["alice", "yoroi"])}, users))
    result, failed = run_module(mod, dict(args, exemptions=[]))
    assert failed and "automation account yoroi is in an MFA group" in result["msg"]
    assert not os.path.exists(args["dropin"])


def test_exemption_that_would_lock_out_the_automation_is_refused(tree, run_module):
    tmp_path, homes, args, reloads = tree
    args = dict(args, exemptions=[{"user": "yoroi", "methods": "password", "from": ["10.0.0.0/8"]}])
    result, failed = run_module(mod, args)
    assert failed and "would lock out automation account yoroi" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert not os.path.exists(args["dropin"]) and (tmp_path / "pam.d" / "sshd").read_text() == PAM_SSHD


def test_existing_secret_is_never_overwritten_and_weak_options_reported(tree, run_module):
    tmp_path, homes, args, reloads = tree
    path = homes["alice"] / ".google_authenticator"
    path.write_text("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n")
    os.chmod(path, 0o400)
    result, failed = run_module(mod, args)
    assert not failed
    assert path.read_text() == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n"
    assert [e["user"] for e in result["enrolled"]] == ["bob"]
    weak = [f for f in _by(result, "MFA-003") if f["subject"] == "alice"][0]
    assert weak["status"] == "fail" and "JBSWY3DP" not in repr(result)


def test_guard_is_armed_over_the_files_that_change_only(tree, run_module, monkeypatch):
    tmp_path, homes, args, reloads = tree
    armed = []
    monkeypatch.setattr(_guard, "arm", lambda module, paths, units, timeout: armed.append((sorted(paths), units, timeout))
                        or {"token": "T-1", "unit": "yoroi-guard-T-1", "dir": "/x"})
    result, failed = run_module(mod, dict(args, guard_timeout=120))
    assert not failed and result["guard_token"] == "T-1"
    assert armed == [(sorted([args["dropin"], args["access_file"], str(tmp_path / "pam.d" / "sshd")]), ["ssh.service"], 120)]
    again, failed = run_module(mod, dict(args, guard_timeout=120))
    assert "guard_token" not in again and len(armed) == 1  # nothing changes, nothing to guard
    check, failed = run_module(mod, dict(args, guard_timeout=120, deadline="2000-01-01"), check_mode=True)
    assert "guard_token" not in check and len(armed) == 1


def test_host_without_ssh_server_is_skipped_and_untouched(tree, run_module, monkeypatch):
    tmp_path, homes, args, reloads = tree
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file())
    result, failed = run_module(mod, args)
    assert not failed and result["changed"] is False
    assert {f["control"]: f["status"] for f in result["findings"]} == dict.fromkeys(
        ["MFA-001", "MFA-002", "MFA-003", "MFA-004", "MFA-005"], "skipped")
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()) == before
    assert reloads == []


# --- enrolment: the secret comes back from the module, pending until the controller has it --


def _first_line(path):
    return path.read_text().splitlines()[0]


def test_the_module_returns_the_secret_it_created_and_marks_it_pending(tree, run_module):
    tmp_path, homes, args, reloads = tree
    result, failed = run_module(mod, args)
    assert not failed, result
    handed = dict((h["user"], h) for h in result["handoff"])
    assert sorted(handed) == ["alice", "bob"]
    for name in ("alice", "bob"):
        assert handed[name]["secret"] == _first_line(homes[name] / ".google_authenticator")
        marker = tmp_path / "pending" / name
        assert marker.read_text().strip() == handed[name]["digest"]
        assert oct(os.stat(marker).st_mode & 0o777) == "0o600"
        assert handed[name]["secret"] not in marker.read_text()


def test_an_enrolment_never_confirmed_is_reported_and_replaced(tree, run_module):
    tmp_path, homes, args, reloads = tree
    first, failed = run_module(mod, args)
    secret_file = homes["alice"] / ".google_authenticator"
    lost = _first_line(secret_file)
    stamp = (secret_file.read_text(), os.stat(secret_file).st_mtime_ns, (tmp_path / "pending" / "alice").read_text())

    audit, failed = run_module(mod, args, check_mode=True)
    assert not failed and audit["changed"] and "handoff" not in audit
    alice = [f for f in _by(audit, "MFA-002") if f["subject"] == "alice"][0]
    assert alice["status"] == "fail" and "pending" in alice["actual"]
    assert stamp == (secret_file.read_text(), os.stat(secret_file).st_mtime_ns, (tmp_path / "pending" / "alice").read_text())

    again, failed = run_module(mod, args)
    assert not failed, again
    handed = dict((h["user"], h["secret"]) for h in again["handoff"])
    assert sorted(handed) == ["alice", "bob"] and handed["alice"] != lost
    assert _first_line(secret_file) == handed["alice"]
    assert oct(os.stat(secret_file).st_mode & 0o777) == "0o400"
    assert [f["status"] for f in _by(again, "MFA-002")] == ["fixed", "fixed"]


def test_confirm_clears_only_the_enrolment_that_was_saved(tree, run_module):
    tmp_path, homes, args, reloads = tree
    result, failed = run_module(mod, args)
    digest = dict((h["user"], h["digest"]) for h in result["handoff"])
    stale, failed = run_module(mod, dict(args, confirm=[{"user": "alice", "digest": "0" * 64}]))
    assert not failed and stale["confirmed"] == [] and (tmp_path / "pending" / "alice").exists()
    ok, failed = run_module(mod, dict(args, confirm=[{"user": "alice", "digest": digest["alice"]}]))
    assert ok["confirmed"] == ["alice"] and not (tmp_path / "pending" / "alice").exists()
    check, failed = run_module(mod, dict(args, confirm=[{"user": "bob", "digest": digest["bob"]}]), check_mode=True)
    assert check["confirmed"] == ["bob"] and (tmp_path / "pending" / "bob").exists()
    bad, failed = run_module(mod, dict(args, confirm=[{"user": "../../etc/passwd", "digest": digest["bob"]}]))
    assert failed and "user name" in bad["msg"]
    again, failed = run_module(mod, args)
    assert [h["user"] for h in again["handoff"]] == ["bob"]


def test_a_file_the_user_replaced_with_their_own_is_theirs(tree, run_module):
    tmp_path, homes, args, reloads = tree
    run_module(mod, args)
    secret_file = homes["alice"] / ".google_authenticator"
    os.unlink(secret_file)
    secret_file.write_text("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n")
    os.chmod(secret_file, 0o400)
    again, failed = run_module(mod, args)
    assert [h["user"] for h in again["handoff"]] == ["bob"]
    assert _first_line(secret_file) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert not (tmp_path / "pending" / "alice").exists()
    assert [f["status"] for f in _by(again, "MFA-002") if f["subject"] == "alice"] == ["pass"]


def test_a_home_that_is_a_symlink_is_never_written(tree, run_module):
    tmp_path, homes, args, reloads = tree
    elsewhere = tmp_path / "etc-like"
    elsewhere.mkdir()
    os.rmdir(homes["alice"])
    os.symlink(elsewhere, homes["alice"])
    result, failed = run_module(mod, args)
    assert not failed, result
    assert os.listdir(elsewhere) == []
    assert [h["user"] for h in result["handoff"]] == ["bob"]
    alice = [f for f in _by(result, "MFA-002") if f["subject"] == "alice"][0]
    assert alice["status"] == "fail" and "symlink" in alice["actual"]


def test_create_secret_never_follows_a_planted_link(tree, tmp_path):
    _tmp, homes, args, reloads = tree
    target = tmp_path / "shadow-like"
    target.write_text("root:$y$hash:20000::::::\n")
    os.symlink(target, homes["alice"] / ".google_authenticator")
    member = mod.mfa.Member("alice", os.getuid(), os.getgid(), str(homes["alice"]), "absent")
    with pytest.raises(OSError):
        mod.create_secret(member)
    assert target.read_text() == "root:$y$hash:20000::::::\n"
    # replacing a pending enrolment replaces the name, never what a link points to
    path, text = mod.create_secret(mod.mfa.Member("alice", os.getuid(), os.getgid(), str(homes["alice"]), "pending"))
    assert target.read_text() == "root:$y$hash:20000::::::\n"
    assert not os.path.islink(path) and open(path).read() == text
    assert [n for n in os.listdir(homes["alice"]) if n.startswith(".yoroi-ga-")] == []


def test_create_secret_refuses_a_home_of_another_user(tree, monkeypatch):
    _tmp, homes, args, reloads = tree
    member = mod.mfa.Member("alice", 4242, 4242, str(homes["alice"]), "absent")
    monkeypatch.setattr(mod.os, "fstat", lambda fd: os.stat_result((0o40755, 0, 0, 2, 31337, 0, 0, 0, 0, 0)))
    with pytest.raises(mod.EnrolmentRefused) as refused:
        mod.create_secret(member)
    assert "owned by uid 31337" in str(refused.value)
    assert not (homes["alice"] / ".google_authenticator").exists()


def test_an_allow_groups_lockout_on_the_candidate_is_refused(tree, run_module):
    """Another drop-in limits SSH to a group the automation is not in: the candidate
    would lock it out, which the access engine sees (AllowGroups), so nothing changes."""
    tmp_path, homes, args, reloads = tree
    FakeCandidate.extra = {"allowgroups": "admins"}
    result, failed = run_module(mod, args)
    assert failed and "would lock out automation account yoroi" in result["msg"]
    assert "AllowGroups admins" in result["msg"]
    assert {f["control"] for f in result["findings"]} == set(mod.mfa.CONTROLS)
    assert {f["status"] for f in result["findings"]} == {"error"}
    assert not os.path.exists(args["dropin"]) and (tmp_path / "pam.d" / "sshd").read_text() == PAM_SSHD
