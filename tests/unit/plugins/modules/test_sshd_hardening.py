"""sshd_hardening through run_module on a temp tree.

The controller has no sshd, so commands are answered by a small stand-in: ``ssh -Q`` with
outputs recorded on bookworm, ``sshd -T`` by reading the (temp) main config and its
Includes with sshd's first-value rule over bookworm's recorded defaults, and groupadd /
usermod by editing a temp /etc/group. systemd is recorded. The real sshd is exercised by
tests/infra/test_ssh.py on lab hosts.
"""

import glob
import importlib.util
import os
from collections import namedtuple
from pathlib import Path

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils import _sshd as sshd
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import sshd_hardening

_spec = importlib.util.spec_from_file_location(
    "recorded", str(Path(__file__).resolve().parents[1] / "module_utils" / "test_sshd_recorded.py"))
rec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rec)

Pw = namedtuple("Pw", "pw_name pw_passwd pw_uid pw_gid pw_gecos pw_dir pw_shell")
DEBIAN_MAIN = "Include {dropins}/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\n"


def fake_effective(main_path):
    """sshd -T as sshd computes it for plain keywords: first value wins, the four
    Allow/Deny lists accumulate; unset keywords keep bookworm's recorded defaults."""
    seen = {}

    def read(path):
        for line in open(path).read().splitlines():
            tokens = line.strip().split(None, 1)
            if not tokens or tokens[0].startswith("#"):
                continue
            key, value = tokens[0].lower(), tokens[1] if len(tokens) > 1 else ""
            if key == "include":
                for pattern in value.split():
                    for name in sorted(glob.glob(pattern)):
                        read(name)
            elif key in sshd.ACCUMULATING:
                seen.setdefault(key, []).extend(value.split())
            elif key not in seen:
                seen[key] = [value]

    read(main_path)
    if "bogus" in seen:
        return None
    lines = []
    stock = sshd.parse_effective(rec.BOOKWORM_T_STOCK)
    for key in sorted(set(stock) | set(seen)):
        for value in seen.get(key, stock.get(key)):
            lines.append("%s %s" % (key, value))
    return "\n".join(lines) + "\n"


@pytest.fixture
def host(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    (etc / "ssh" / "sshd_config.d").mkdir(parents=True)
    dropin_dir = str(etc / "ssh" / "sshd_config.d")
    (etc / "ssh" / "sshd_config").write_text(DEBIAN_MAIN.format(dropins=dropin_dir))
    (etc / "issue.net").write_text("Debian GNU/Linux 12\n")
    group = etc / "group"
    group.write_text("root:x:0:\nsudo:x:27:breakglass\nyoroi:x:1005:\nbreakglass:x:1000:\nalice:x:1001:\n")
    home = tmp_path / "home" / "yoroi"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA lab\n")
    accounts = {
        "yoroi": Pw("yoroi", "x", 1005, 1005, "", str(home), "/bin/sh"),
        "breakglass": Pw("breakglass", "x", 1000, 1000, "", "/nonexistent", "/bin/sh"),
        "alice": Pw("alice", "x", 1001, 1001, "", "/nonexistent", "/bin/sh"),
    }
    calls = []

    def getpwnam(name):
        if name not in accounts:
            raise KeyError(name)
        return accounts[name]

    def run_command(self, argv, environ_update=None, **kwargs):
        calls.append(list(argv))
        name = os.path.basename(argv[0])
        if name == "ssh":
            return 0, getattr(rec, "BOOKWORM_Q_" + argv[2].upper()), ""
        if name == "sshd":
            main = argv[3] if "-f" in argv else str(etc / "ssh" / "sshd_config")
            output = fake_effective(main)
            if output is None:
                return 1, "", "bad keyword"
            return 0, output if argv[1] == "-T" else "", ""
        if name == "groupadd":
            group.write_text(group.read_text() + "%s:x:2000:\n" % argv[1])
            return 0, "", ""
        if name == "usermod":  # usermod -a -G GROUP USER
            rows = []
            for line in group.read_text().splitlines():
                fields = line.split(":")
                if fields[0] == argv[3]:
                    fields[3] = ",".join([m for m in fields[3].split(",") if m] + [argv[4]])
                rows.append(":".join(fields))
            group.write_text("\n".join(rows) + "\n")
            return 0, "", ""
        return 0, "", ""  # systemd-run, systemctl

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: "/usr/sbin/" + name)
    monkeypatch.setattr(sshd_hardening, "GROUP", str(group))
    bob = tmp_path / "home" / "bob"
    (bob / ".ssh").mkdir(parents=True)
    (bob / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA bob@laptop\n")
    (etc / "passwd").write_text(
        "root:x:0:0::/nonexistent:/bin/bash\nyoroi:x:1005:1005::%s:/bin/sh\nbreakglass:x:1000:1000::/nonexistent:/bin/sh\n"
        "alice:x:1001:1001::/nonexistent:/bin/sh\nbob:x:1002:1002::%s:/bin/bash\ncarol:x:1003:1003::/nonexistent:/bin/bash\n"
        "svc:x:998:998::/nonexistent:/usr/sbin/nologin\n" % (home, bob))
    (etc / "shadow").write_text(
        "root:*:20000:0:99999:7:::\nyoroi:*:20000:0:99999:7:::\nbreakglass:$y$bg:20000:0:99999:7:::\n"
        "alice:$y$al:20000:0:99999:7:::\nbob:!:20000:0:99999:7:::\ncarol:!$y$ca:20000:0:99999:7:::\nsvc:$y$sv:20000::::::\n")
    monkeypatch.setattr(sshd_hardening, "PASSWD", str(etc / "passwd"))
    monkeypatch.setattr(sshd_hardening, "SHADOW", str(etc / "shadow"))
    monkeypatch.setattr(sshd_hardening.pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(sshd_hardening.os, "geteuid", lambda: 0)
    args = {
        "sshd_config": str(etc / "ssh" / "sshd_config"),
        "dropin_path": os.path.join(dropin_dir, "00-yoroi.conf"),
        "banner_path": str(etc / "issue.net"),
        "guard_root": str(tmp_path / "guard"),
        "automation_account": "yoroi",
        "break_glass_accounts": ["breakglass"],
        "contact": "soc@example.org",
        "client_address": "10.89.3.1",
    }
    return {"etc": etc, "group": group, "calls": calls, "args": args, "dropin": Path(args["dropin_path"])}


def by_control(result):
    return dict((f["control"], f) for f in result["findings"] if "subject" not in f)


def ran(host, name):
    return [c for c in host["calls"] if os.path.basename(c[0]) == name]


def test_check_mode_plans_everything_and_writes_nothing(run_module, host):
    result, failed = run_module(sshd_hardening, host["args"], check_mode=True, diff=True)
    assert not failed and result["changed"]
    findings = by_control(result)
    assert findings["SSH-001"]["status"] == "fail" and "would become: PermitRootLogin no" in findings["SSH-001"]["evidence"]
    assert findings["SSH-002"]["status"] == "pass"
    headers = [d["after_header"] for d in result["diff"]]
    assert headers == [host["args"]["dropin_path"], host["args"]["banner_path"], str(host["group"])]
    assert "ssh-users: yoroi,breakglass" in result["diff"][2]["after"]
    assert not host["dropin"].exists() and "ssh-users" not in host["group"].read_text()
    assert not ran(host, "groupadd") and not ran(host, "systemd-run") and not ran(host, "systemctl")
    assert result["precheck"]["problems"] == []


def test_apply_then_second_run_changes_nothing(run_module, host):
    result, failed = run_module(sshd_hardening, host["args"])
    assert not failed and result["changed"], result.get("msg")
    assert set(f["status"] for f in result["findings"]) == {"fixed", "pass"}
    assert by_control(result)["SSH-006"]["status"] == "pass"  # bookworm's default ciphers are strong
    text = host["dropin"].read_text()
    assert "PermitRootLogin no\n" in text and "KexAlgorithms sntrup761x25519-sha512," in text
    assert "ssh-users:x:2000:yoroi,breakglass" in host["group"].read_text()
    assert "soc@example.org" in (host["etc"] / "issue.net").read_text()
    # the guard was armed before the files were written, and sshd reloaded after
    assert result["guard_token"] and os.path.isdir(result["guard"]["dir"])
    order = [os.path.basename(c[0]) for c in host["calls"]]
    assert order.index("systemd-run") < order.index("groupadd")
    assert host["calls"][-2][-2:] == ["reload", "ssh"] or ["reload", "ssh"] in [c[-2:] for c in ran(host, "systemctl")]
    stamp = os.stat(host["dropin"]).st_mtime_ns
    host["calls"].clear()

    again, failed = run_module(sshd_hardening, host["args"])
    assert not failed and not again["changed"] and "guard_token" not in again
    assert set(f["status"] for f in again["findings"]) == {"pass"}
    assert os.stat(host["dropin"]).st_mtime_ns == stamp
    assert not ran(host, "systemd-run") and not ran(host, "systemctl") and not ran(host, "groupadd")


def test_a_group_that_excludes_the_automation_is_refused_before_any_change(run_module, host):
    args = dict(host["args"], allow_groups=["nobody-group"], add_protected_to_allow_group=False)
    group_before = host["group"].read_text()
    result, failed = run_module(sshd_hardening, args)
    assert failed and result["msg"].startswith("refused:")
    assert "automation account yoroi: AllowGroups nobody-group: yoroi is in none of them" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert set(f["status"] for f in result["findings"]) == {"error"}
    assert not host["dropin"].exists() and host["group"].read_text() == group_before
    assert not ran(host, "systemd-run") and not ran(host, "groupadd")


def test_skip_lockout_check_writes_anyway_with_a_guard(run_module, host):
    args = dict(host["args"], extra_settings={"AllowUsers": "nobody"}, skip_lockout_check=True)
    result, failed = run_module(sshd_hardening, args)
    assert not failed and result["guard_token"]
    assert any("SKIPPED" in w for w in result["warnings"])
    assert "AllowUsers nobody" in host["dropin"].read_text()


def test_invalid_candidate_is_refused(run_module, host):
    args = dict(host["args"], extra_settings={"Bogus": "yes"})
    result, failed = run_module(sshd_hardening, args)
    assert failed and "invalid (sshd -t): bad keyword" in result["msg"]
    assert not host["dropin"].exists()


def test_main_file_without_include_gets_one_and_says_so(run_module, host):
    main = host["etc"] / "ssh" / "sshd_config"
    main.write_text("PermitRootLogin yes\nUsePAM yes\n")
    result, failed = run_module(sshd_hardening, host["args"], diff=True)
    assert not failed
    assert main.read_text().splitlines()[1] == "Include %s/*.conf" % host["dropin"].parent
    assert "had no Include" in result["main_config_note"]
    assert all("had no Include" in f["evidence"] for f in result["findings"] if "subject" not in f)
    assert by_control(result)["SSH-001"]["status"] == "fixed"


def test_allowed_members_are_added_and_missing_accounts_warned(run_module, host):
    args = dict(host["args"], allow_group_members=["alice", "ghost"])
    result, failed = run_module(sshd_hardening, args)
    assert not failed
    assert "ssh-users:x:2000:yoroi,breakglass,alice" in host["group"].read_text()
    assert any("ghost does not exist" in w for w in result["warnings"])


@pytest.mark.parametrize("args, message", [
    ({"max_auth_tries": 0}, "max_auth_tries must be between"),
    ({"guard_timeout": 5}, "guard_timeout"),
    ({"extra_settings": {"MaxAuthTries": 2}}, "managed by the role"),
    ({"ciphers": ["rot13"]}, "supports none of the strong Ciphers"),
])
def test_bad_inputs(run_module, host, args, message):
    result, failed = run_module(sshd_hardening, dict(host["args"], **args))
    assert failed and message in result["msg"]
    assert not host["dropin"].exists()


def test_host_without_ssh_server_is_skipped_and_untouched(run_module, host, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    before = sorted((p, p.stat().st_mtime_ns) for p in host["etc"].rglob("*") if p.is_file())
    result, failed = run_module(sshd_hardening, host["args"])
    assert not failed and result["changed"] is False
    assert sorted(f["control"] for f in result["findings"]) == ["SSH-%03d" % n for n in range(1, 13)]
    assert {f["status"] for f in result["findings"]} == {"skipped"}
    assert sorted((p, p.stat().st_mtime_ns) for p in host["etc"].rglob("*") if p.is_file()) == before
    assert host["calls"] == []


def losing_access(result):
    return dict((f["subject"], f) for f in result["findings"] if f["control"] == "SSH-009" and f.get("subject"))


def test_audit_lists_every_account_that_would_lose_ssh_access(run_module, host):
    """AllowGroups ssh-users cuts every account outside the group; audit names them
    before apply: alice (password) and bob (key only), not the locked carol, the nologin
    svc, root without a password or key, nor the protected accounts added to the group."""
    result, failed = run_module(sshd_hardening, host["args"], check_mode=True)
    assert not failed
    losses = losing_access(result)
    assert sorted(losses) == ["alice", "bob"]
    assert losses["bob"]["status"] == "fail" and losses["bob"]["actual"] == "logs in over SSH today with publickey"
    assert "AllowGroups ssh-users: bob is in none of them" in losses["bob"]["evidence"]
    assert "password" in losses["alice"]["actual"]


def test_an_allowed_member_is_not_listed_and_the_loss_is_reported_after_apply(run_module, host):
    args = dict(host["args"], allow_group_members=["alice"])
    result, failed = run_module(sshd_hardening, args, check_mode=True)
    assert not failed and sorted(losing_access(result)) == ["bob"]
    applied, failed = run_module(sshd_hardening, args)
    assert not failed
    assert losing_access(applied)["bob"]["status"] == "fixed"
    assert "no SSH access: AllowGroups ssh-users" in losing_access(applied)["bob"]["actual"]
    again = run_module(sshd_hardening, args, check_mode=True)[0]
    assert losing_access(again) == {}
