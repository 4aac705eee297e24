"""The firewall module in-process, on a tmp tree, with a fake host behind its commands
(nft, sshd, systemctl) that answers with `nft -j list ruleset` recorded on a bookworm lab
host. Audit, apply, a second apply, an audit after it, a refusal, and no CAP_NET_ADMIN."""

import os
import pwd
from pathlib import Path

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils import _firewall as fw
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import firewall as mod

RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "recorded" / "firewall"
# the site of recorded/firewall/yoroi-sample.nft
ARGS = {"management_addresses": ["10.89.0.1", "2001:db8::/64"], "keep_current_client": False,
        "allow": [{"port": 8080, "from": ["10.89.0.0/24"]}, {"port": 53, "proto": "udp"}],
        "client_address": "10.89.0.1", "automation_account": "yoroi", "guard_timeout": 0, "packages": ["nftables"]}
# Debian's /etc/nftables.conf as the nftables package installs it
STOCK_CONF = "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter;\n\t}\n}\n"
EPERM = "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n"


class FakeHost(object):
    def __init__(self, ruleset="empty-bookworm.json"):
        self.ruleset = (RECORDED / ruleset).read_text()
        self.enabled = False
        self.installed = {"nftables"}
        self.eperm = False
        self.calls = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/sbin/" + name

    def run_command(self, argv, **_kwargs):
        argv = [os.path.basename(argv[0])] + list(argv[1:])
        self.calls.append(argv)
        if argv[:4] == ["nft", "-j", "list", "ruleset"]:
            return (1, "", EPERM) if self.eperm else (0, self.ruleset, "")
        if argv[:2] == ["nft", "-c"]:
            return 0, "", ""
        if argv[:2] == ["nft", "-f"]:
            # the file loaded is the recorded sample's: its listing is the one recorded
            assert Path(argv[2]).read_text() == (RECORDED / "yoroi-sample.nft").read_text()
            self.ruleset = (RECORDED / "yoroi-bookworm.json").read_text()
            return 0, "", ""
        if argv[:2] == ["sshd", "-T"]:
            return 0, "port 22\npubkeyauthentication yes\nauthenticationmethods any\nauthorizedkeysfile none\n" \
                      "authorizedkeyscommand /bin/true\n", ""
        if argv[:2] == ["systemctl", "is-enabled"]:
            return (0, "enabled\n", "") if self.enabled else (1, "disabled\n", "")
        if argv[:2] == ["systemctl", "enable"]:
            self.enabled = True
            return 0, "", ""
        if argv[:2] == ["systemctl", "daemon-reload"]:
            return 0, "", ""
        raise AssertionError("unexpected command %r" % (argv,))


@pytest.fixture
def host(tmp_path, monkeypatch):
    fake = FakeHost()
    # (a bound method set on the class is not bound again: the module instance is not passed)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", fake.get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake.run_command)
    monkeypatch.setattr(_packages, "missing", lambda _m, names: [n for n in names if n not in fake.installed])
    monkeypatch.setattr(mod.os, "geteuid", lambda: 0)
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr(mod.pwd, "getpwnam", lambda name: pwd.struct_passwd(
        (name, "x", 1005, 1005, "", "/home/" + name, "/bin/sh")))
    monkeypatch.setattr(mod.access, "shell_ok", lambda _path: True)
    for name in ("RULES_FILE", "NFTABLES_CONF", "RELOAD_UNIT_FILE"):
        monkeypatch.setattr(fw, name, str(tmp_path / os.path.basename(getattr(fw, name))))
    monkeypatch.setattr(mod, "ENABLED_LINK", str(tmp_path / "nftables.service.link"))
    (tmp_path / "nftables.conf").write_text(STOCK_CONF)
    fake.tmp = tmp_path
    return fake


def statuses(result):
    return [(f["control"], f["status"]) for f in result["findings"]]


def test_audit_apply_second_apply_and_audit(host, run_module):
    audit, failed = run_module(mod, ARGS, check_mode=True, diff=True)
    assert not failed and audit["changed"]
    assert statuses(audit) == [("FWL-%03d" % i, "fail") for i in range(1, 6)]
    assert audit["findings"][0]["actual"] == "no table inet yoroi (tables: none)"
    assert not Path(fw.RULES_FILE).exists() and not any(c[:2] == ["nft", "-f"] for c in host.calls)
    assert [d["after_header"] for d in audit["diff"]] == [fw.RULES_FILE, fw.NFTABLES_CONF]

    applied, failed = run_module(mod, ARGS)
    assert not failed and applied["changed"], applied
    assert statuses(applied) == [("FWL-%03d" % i, "fixed") for i in range(1, 6)]
    assert Path(fw.RULES_FILE).read_text() == (RECORDED / "yoroi-sample.nft").read_text()
    assert Path(fw.NFTABLES_CONF).read_text().startswith(STOCK_CONF)
    assert Path(fw.NFTABLES_CONF).read_text().endswith(fw.INCLUDE_LINE + "\n")
    assert host.enabled
    loads = [c for c in host.calls if c[:2] in (["nft", "-c"], ["nft", "-f"])]
    assert [c[:2] for c in loads] == [["nft", "-c"], ["nft", "-c"], ["nft", "-f"]]  # checked before loaded

    mtime = os.stat(fw.RULES_FILE).st_mtime_ns
    host.calls.clear()
    second, failed = run_module(mod, ARGS)
    assert not failed and not second["changed"]
    assert statuses(second) == [("FWL-%03d" % i, "pass") for i in range(1, 6)]
    assert os.stat(fw.RULES_FILE).st_mtime_ns == mtime
    assert not any(c[0] == "nft" and c[1] in ("-f", "-c") for c in host.calls)
    audit, failed = run_module(mod, ARGS, check_mode=True)
    assert not failed and not audit["changed"] and set(s for _c, s in statuses(audit)) == {"pass"}


def test_a_table_that_drops_the_automation_is_refused_before_anything_is_written(host, run_module):
    args = dict(ARGS, client_address="192.0.2.50")
    result, failed = run_module(mod, args)
    assert failed
    assert result["msg"].startswith("refused: the new firewall ruleset would lock out automation account yoroi: "
                                    "the firewall would drop tcp from 192.0.2.50 to port 22 (policy drop)")
    assert set(s for _c, s in statuses(result)) == {"error"}
    assert not Path(fw.RULES_FILE).exists() and Path(fw.NFTABLES_CONF).read_text() == STOCK_CONF
    assert not any(c[:2] == ["nft", "-f"] for c in host.calls) and not host.enabled
    # the audit says the same before anything is applied
    result, failed = run_module(mod, args, check_mode=True)
    assert failed and "would lock out automation account yoroi" in result["msg"]


def test_keeping_the_current_client_lets_the_same_run_through(host, run_module):
    args = dict(ARGS, client_address="192.0.2.50", keep_current_client=True, management_addresses=["10.89.0.1"])
    result, failed = run_module(mod, args, check_mode=True)
    assert not failed, result
    assert result["current_clients"] == ["192.0.2.50"] and result["precheck"]["problems"] == []


def test_no_management_address_is_refused_when_applying(host, run_module):
    args = dict(ARGS, management_addresses=[], client_address=None)
    result, failed = run_module(mod, args)
    assert failed and "no management address" in result["msg"]
    result, failed = run_module(mod, args, check_mode=True)
    assert not failed and dict(statuses(result))["FWL-002"] == "fail"


def test_without_cap_net_admin_every_control_says_so(host, run_module):
    host.eperm = True
    result, failed = run_module(mod, ARGS)
    assert not failed and not result["changed"]
    assert set(s for _c, s in statuses(result)) == {"error"}
    assert result["findings"][0]["actual"] == "nftables cannot read or load rules here: Operation not permitted (you must be root)"
    assert not Path(fw.RULES_FILE).exists()


@pytest.mark.parametrize("args,message", [
    ({"management_addresses": ["0.0.0.0/0"]}, "would be every address"),
    ({"allow": [{"port": 70000}]}, "port 70000 is not from 1 to 65535"),
    ({"log_rate": "fast"}, "log_rate 'fast'"),
    ({"ssh_ports": [0]}, "ssh_ports: port 0"),
    ({"guard_timeout": 5}, "guard_timeout must be 0"),
])
def test_bad_arguments_are_refused(host, run_module, args, message):
    result, failed = run_module(mod, dict(ARGS, **args))
    assert failed and message in result["msg"], result["msg"]
    assert not host.calls
