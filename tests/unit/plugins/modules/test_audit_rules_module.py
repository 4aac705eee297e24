"""The audit_rules module on a tmp tree laid out as a bookworm lab host with auditd installed:
the commands answer as they did in a podman container (augenrules compiles, the kernel
refuses every audit request)."""

import os
import stat

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import audit_rules as mod

SYSLOG_CONF = "active = no\ndirection = out\npath = /sbin/audisp-syslog\ntype = always\nargs = LOG_INFO\nformat = string\n"
REFUSED = "Error sending status request (Operation not permitted)"


class FakeHost(object):
    """augenrules as Debian's script behaves (compiles rules.d; --load then fails), auditctl
    refused by the kernel, systemctl answering for an enabled, failed auditd."""

    def __init__(self, root):
        self.root = root
        self.calls = []
        self.kernel = False  # True: a host whose kernel loads audit rules
        self.loaded = ""
        self.active = "failed"

    def compiled(self):
        rules_d = self.root / "etc/audit/rules.d"
        return "".join((rules_d / name).read_text() for name in sorted(os.listdir(rules_d)))

    def run(self, _module, argv):
        self.calls.append(argv)
        target = self.root / "etc/audit/audit.rules"
        if argv[0] == "augenrules":
            if argv[1:] == ["--check"]:
                same = target.exists() and target.read_text() == self.compiled()
                return 0, "/sbin/augenrules: No change" if same else "/sbin/augenrules: Rules have changed and should be updated"
            target.write_text(self.compiled())
            if self.kernel:
                self.loaded = target.read_text()
                return 0, ""
            return 1, "You must be root to run this program."
        if argv[0] == "auditctl":
            if not self.kernel:
                return 255, REFUSED
            return 0, self.loaded if argv[1:] == ["-l"] else "enabled 1"
        if argv[:2] == ["systemctl", "is-enabled"]:
            return 0, "enabled"
        if argv[:2] == ["systemctl", "is-active"]:
            return 0 if self.active == "active" else 3, self.active
        if argv[:2] == ["systemctl", "start"]:
            self.active = "active"
        return 0, ""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "etc/audit/rules.d").mkdir(parents=True)
    (root / "etc/audit/plugins.d").mkdir(parents=True)
    (root / "etc/audit/rules.d/audit.rules").write_text("-D\n-b 8192\n-f 1\n")
    (root / "etc/audit/plugins.d/syslog.conf").write_text(SYSLOG_CONF)
    (root / "etc/login.defs").write_text("UID_MIN 1000\n")
    (root / "run").mkdir()
    (root / "run/.containerenv").write_text("")
    (root / "usr/bin").mkdir(parents=True)
    for name, mode in (("su", 0o4755), ("chage", 0o2755), ("ls", 0o755)):
        (root / "usr/bin" / name).write_text("")
        os.chmod(root / "usr/bin" / name, mode)
    (root / "run/suid-elsewhere").write_text("")
    os.chmod(root / "run/suid-elsewhere", 0o4755)
    fake = FakeHost(root)
    monkeypatch.setattr(mod, "ROOT", str(root))
    monkeypatch.setattr(mod, "run", fake.run)
    monkeypatch.setattr(_packages, "missing", lambda _module, names: [])
    return root, fake


def statuses(result):
    return sorted(set((f["control"], f["status"]) for f in result["findings"]))


def test_audit_apply_again_and_audit(tree, run_module):
    root, fake = tree
    rules = root / "etc/audit/rules.d/50-yoroi.rules"

    audit, failed = run_module(mod, {}, check_mode=True)
    assert not failed and audit["changed"]
    assert not rules.exists() and "active = no" in (root / "etc/audit/plugins.d/syslog.conf").read_text()
    assert not [c for c in fake.calls if c[0] != "augenrules" and c[:1] != ["auditctl"] and c[1] not in ("is-enabled", "is-active")]
    assert set(s for _c, s in statuses(audit)) == {"fail", "pass"}  # AUD-001 passes: installed, enabled

    applied, failed = run_module(mod, {}, diff=True)
    assert not failed and applied["changed"], applied
    assert ["augenrules", "--load"] in fake.calls
    text = rules.read_text()
    assert "-a always,exit -F path=/usr/bin/chage -F perm=x -F auid>=1000 -F auid!=unset -k privileged" in text
    assert "-a always,exit -F path=/usr/bin/su -F perm=x -F auid>=1000 -F auid!=unset -k privileged" in text
    assert "/usr/bin/ls" not in text and "/run/suid-elsewhere" not in text  # not SUID; /run is never walked
    assert stat.S_IMODE(os.stat(rules).st_mode) == 0o640
    assert "active = yes" in (root / "etc/audit/plugins.d/syslog.conf").read_text()
    found = dict(((f["control"], f.get("subject")), f) for f in applied["findings"])
    assert found[("AUD-004", None)]["status"] == "fixed" and found[("AUD-005", None)]["status"] == "fixed"
    skipped = [f for f in applied["findings"] if f["control"] in ("AUD-002", "AUD-003")]
    assert skipped and all(f["status"] == "skipped" and "You must be root" in f["evidence"] for f in skipped)
    assert applied["load_error"].startswith("augenrules --load")
    assert [d["after_header"] for d in applied["diff"]] == ["/etc/audit/plugins.d/syslog.conf", "/etc/audit/rules.d/50-yoroi.rules"]

    mtime = os.stat(rules).st_mtime_ns
    fake.calls.clear()
    again, failed = run_module(mod, {})
    assert not failed and not again["changed"], again
    assert ["augenrules", "--load"] not in fake.calls and os.stat(rules).st_mtime_ns == mtime
    assert set(s for _c, s in statuses(again)) == {"pass", "skipped"}
    assert REFUSED in again["load_error"]

    audit, failed = run_module(mod, {}, check_mode=True)
    assert not failed and not audit["changed"]
    assert statuses(audit) == statuses(again)


def test_no_immutable_and_no_syslog_by_policy(tree, run_module):
    root, _fake = tree
    result, failed = run_module(mod, {"immutable": False, "syslog": False, "watches": {"/etc/hosts": "hosts"}})
    assert not failed
    text = (root / "etc/audit/rules.d/50-yoroi.rules").read_text()
    assert "-e 2" not in text and "-w /etc/hosts -p wa -k hosts" in text
    assert "active = no" in (root / "etc/audit/plugins.d/syslog.conf").read_text()
    found = dict((f["control"], f["status"]) for f in result["findings"] if f["control"] in ("AUD-004", "AUD-005"))
    assert found == {"AUD-004": "skipped", "AUD-005": "skipped"}
    assert any(f.get("subject") == "/etc/hosts" for f in result["findings"])


def test_check_mode_without_auditd_says_it_is_installed_when_applying(tree, run_module, monkeypatch):
    root, _fake = tree
    monkeypatch.setattr(_packages, "missing", lambda _module, names: list(names))
    (root / "etc/audit/plugins.d/syslog.conf").unlink()
    result, failed = run_module(mod, {"packages": ["auditd"]}, check_mode=True)
    assert not failed
    found = dict((f["control"], f) for f in result["findings"])
    assert found["AUD-001"]["status"] == "fail" and "installed when applying" in found["AUD-001"]["evidence"]
    assert found["AUD-005"]["status"] == "fail" and "installed when applying" in found["AUD-005"]["evidence"]


def test_on_a_host_rules_not_loaded_are_loaded_and_auditd_started(tree, run_module):
    root, fake = tree
    (root / "run/.containerenv").unlink()
    fake.kernel = True
    first, failed = run_module(mod, {})
    assert not failed and ["systemctl", "start", "auditd"] in fake.calls
    assert set(f["status"] for f in first["findings"]) == {"fixed"}, first["findings"]
    fake.loaded = ""  # rules lost from the kernel (auditd stopped with -D, say): same files
    fake.calls.clear()
    again, failed = run_module(mod, {})
    assert not failed and ["augenrules", "--load"] in fake.calls
    assert set(f["status"] for f in again["findings"] if f["control"] in ("AUD-002", "AUD-003")) == {"fixed"}
    fake.calls.clear()
    third, _failed = run_module(mod, {})
    assert not third["changed"] and set(f["status"] for f in third["findings"]) == {"pass"}


def test_apply_without_auditd_and_no_package_asked_writes_nothing(tree, run_module, monkeypatch):
    root, _fake = tree
    monkeypatch.setattr(_packages, "missing", lambda _module, names: list(names))
    result, failed = run_module(mod, {})
    assert not failed and not result["changed"]
    assert not (root / "etc/audit/rules.d/50-yoroi.rules").exists()
    assert "active = no" in (root / "etc/audit/plugins.d/syslog.conf").read_text()
    assert set(f["status"] for f in result["findings"]) == {"fail"}
