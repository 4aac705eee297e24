"""The file_integrity module on a tmp tree laid out as a bookworm lab host with aide
installed: AIDE answers as it did there (its reports are the ones recorded on the lab host),
systemctl as systemd does for the check's units."""

import json
import os
import stat
import time
from pathlib import Path

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils import _file_integrity as fim
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import file_integrity as mod

RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "recorded" / "aide"


def fresh(name):
    """A recorded report, dated now (the audit judges its age)."""
    data = json.loads((RECORDED / name).read_text())
    data["end_time"] = data["start_time"] = time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime())
    return json.dumps(data)


class FakeHost(object):
    def __init__(self, root):
        self.root = root
        self.calls = []
        self.enabled = ""
        self.active = "inactive"
        self.aide_rc = None  # None: as AIDE does; a number: that exit code, no database
        self.report = "bookworm-update.json"

    def path(self, path):
        return self.root / path.lstrip("/")

    def run(self, _module, argv):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            return 0, "Id=%s\nUnitFileState=%s\nActiveState=%s\n\nId=%s\nResult=success\nExecMainStatus=0\n" % (
                fim.TIMER_NAME, self.enabled, self.active, fim.SERVICE_NAME)
        if argv[:2] == ["systemctl", "enable"]:
            self.enabled = "enabled"
        if argv[:2] == ["systemctl", "restart"]:
            self.active = "active"
        if argv[:2] == ["systemd-analyze", "calendar"]:
            return (0, "Normalized form: *-*-* 00:00:00") if argv[2] in ("daily", "Mon *-*-* 04:00") else (1, "Failed to parse")
        return 0, ""

    def run_command(self, argv, **_kwargs):
        self.calls.append(argv)
        if "--config-check" in argv:
            text = Path(argv[-1].split("=", 1)[1]).read_text()
            return (0, "", "") if text == fim.render_policy() else (17, "", "  ERROR: unknown config option")
        mode = argv[-1].lstrip("-")
        assert argv[-2] == "--config=/etc/aide/yoroi.conf" and mode in ("init", "update")
        assert "/usr/bin/nice" in argv and "/usr/bin/timeout" in argv
        if self.aide_rc is not None:
            return self.aide_rc, "", "  ERROR: cannot open database"
        self.path(fim.NEW_DATABASE).write_bytes(b"\x1f\x8b new database")
        os.chmod(self.path(fim.NEW_DATABASE), 0o600)
        self.path(fim.REPORT).write_text(fresh("bookworm-init.json" if mode == "init" else self.report))
        return (0 if mode == "init" else 5), "", ""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "var/lib").mkdir(parents=True)
    fake = FakeHost(root)
    monkeypatch.setattr(mod, "ROOT", str(root))
    monkeypatch.setattr(mod, "run", fake.run)
    monkeypatch.setattr(_packages, "missing", lambda _module, names: [])
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _self, argv, **kw: fake.run_command(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    return root, fake


def statuses(result):
    return [(f["control"], f["status"]) for f in result["findings"]]


def aide_runs(fake):
    return [c[-1] for c in fake.calls if c and c[-1] in ("--init", "--update")]


def test_audit_apply_again_and_audit(tree, run_module):
    root, fake = tree
    db = root / "var/lib/yoroi/aide/aide.db"

    audit, failed = run_module(mod, {"packages": ["aide"]}, check_mode=True)
    assert not failed and audit["changed"], audit
    assert statuses(audit) == [("FIM-001", "fail"), ("FIM-002", "fail"), ("FIM-003", "fail"), ("FIM-004", "fail")]
    assert not (root / "etc/aide").exists() and not aide_runs(fake)  # check mode writes and runs nothing
    assert sorted(audit["files"]) == [fim.POLICY, fim.SERVICE, fim.TIMER]

    applied, failed = run_module(mod, {"packages": ["aide"]}, diff=True)
    assert not failed and applied["changed"], applied
    assert statuses(applied) == [("FIM-001", "fixed"), ("FIM-002", "fixed"), ("FIM-003", "fixed"), ("FIM-004", "fixed")]
    assert aide_runs(fake) == ["--init"]
    assert applied["database"]["mode"] == "init" and "missing" in applied["database"]["reason"]
    assert stat.S_IMODE(os.lstat(db).st_mode) == 0o600 and not (root / "var/lib/yoroi/aide/aide.db.new").exists()
    assert stat.S_IMODE(os.lstat(root / "var/lib/yoroi/aide").st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(root / "etc/aide/yoroi.conf").st_mode) == 0o600
    assert (root / "etc/aide/yoroi.conf").read_text() == fim.render_policy()
    assert ["systemctl", "enable", fim.TIMER_NAME] in fake.calls and ["systemctl", "daemon-reload"] in fake.calls
    assert [c[:2] for c in fake.calls if "--config-check" in c] == [["/usr/bin/aide", "--config-check"]]
    assert [d["after_header"] for d in applied["diff"]] == [fim.POLICY, fim.SERVICE, fim.TIMER]

    mtimes = dict((p, os.stat(root / p.lstrip("/")).st_mtime_ns) for p in (fim.POLICY, fim.SERVICE, fim.TIMER, fim.DATABASE))
    fake.calls.clear()
    again, failed = run_module(mod, {"packages": ["aide"]})
    assert not failed and not again["changed"], again
    assert set(s for _c, s in statuses(again)) == {"pass"} and not aide_runs(fake) and again["database"] == {}
    assert mtimes == dict((p, os.stat(root / p.lstrip("/")).st_mtime_ns) for p in mtimes)

    audit, failed = run_module(mod, {"packages": ["aide"]}, check_mode=True)
    assert not failed and not audit["changed"] and statuses(audit) == statuses(again)


def test_reinit_is_an_update_that_keeps_the_previous_database_and_says_what_it_accepted(tree, run_module):
    root, fake = tree
    run_module(mod, {})
    (root / "var/lib/yoroi/aide/report.json").write_text(fresh("bookworm-changed.json"))
    audit = run_module(mod, {}, check_mode=True)[0]
    assert dict(statuses(audit))["FIM-004"] == "fail" and "added /etc/yoroi-fim-probe" in audit["findings"][3]["evidence"]

    checked = run_module(mod, {"reinit": True}, check_mode=True)[0]
    assert checked["changed"] and checked["database"]["mode"] == "update" and not aide_runs(fake)[1:]

    done, failed = run_module(mod, {"reinit": True})
    assert not failed and done["changed"]
    assert done["database"]["accepted"] == {"added": 1, "removed": 0, "changed": 2}
    assert dict(statuses(done))["FIM-004"] == "fixed" and dict(statuses(done))["FIM-002"] == "pass"
    assert aide_runs(fake) == ["--init", "--update"]
    assert (root / "var/lib/yoroi/aide/aide.db.previous").exists()


def test_a_database_symlink_is_replaced_never_followed(tree, run_module):
    root, fake = tree
    run_module(mod, {})
    target = root / "planted.db"
    target.write_text("planted")
    db = root / "var/lib/yoroi/aide/aide.db"
    db.unlink()
    db.symlink_to(target)
    audit = run_module(mod, {}, check_mode=True)[0]
    assert dict(statuses(audit))["FIM-002"] == "fail" and "symlink" in audit["findings"][1]["evidence"]
    done, failed = run_module(mod, {})
    assert not failed and dict(statuses(done))["FIM-002"] == "fixed" and done["database"]["mode"] == "init"
    assert not db.is_symlink() and target.read_text() == "planted"


def test_an_audit_of_a_host_without_aide_says_what_the_apply_would_do(tree, run_module, monkeypatch):
    root, fake = tree
    monkeypatch.setattr(_packages, "missing", lambda _module, names: list(names))
    audit, failed = run_module(mod, {"packages": ["aide"]}, check_mode=True)
    assert not failed and audit["changed"] and audit["database"] == {"mode": "init", "reason": "/var/lib/yoroi/aide is missing"}
    assert sorted(audit["files"]) == [fim.POLICY, fim.SERVICE, fim.TIMER] and "packages_installed" not in audit
    assert [f["actual"] for f in audit["findings"]][0] == "aide is not installed"
    assert not (root / "etc/aide").exists() and not aide_runs(fake)
    # without aide asked for, an apply writes nothing that nothing would read
    applied, failed = run_module(mod, {})
    assert not failed and not applied["changed"] and not (root / "etc/aide").exists()


def test_a_failed_build_leaves_no_database_and_is_an_error(tree, run_module):
    root, fake = tree
    fake.aide_rc = 17
    done, failed = run_module(mod, {})
    assert not failed and done["database"]["error"].startswith("aide --init failed")
    assert dict(statuses(done))["FIM-002"] == "error", done["findings"]
    assert not (root / "var/lib/yoroi/aide/aide.db").exists() and not (root / "var/lib/yoroi/aide/aide.db.new").exists()
    fake.aide_rc = 124
    done = run_module(mod, {"timeout": 60})[0]
    assert "stopped after 60 s (timeout)" in done["database"]["error"]


@pytest.mark.parametrize("args,why", [
    ({"extra_paths": ["/opt/../etc"]}, "absolute, normalized"),
    ({"exclude": ["/etc/*"]}, "absolute, normalized"),
    ({"exclude": ["/usr"]}, "would exclude the covered path"),
    ({"schedule": "daily\nExecStart=/bin/sh"}, "one line"),
    ({"schedule": "every blue moon"}, "not a systemd calendar expression"),
    ({"timeout": 0}, "timeout must be positive"),
])
def test_bad_input_is_refused_before_any_change(tree, run_module, args, why):
    root, fake = tree
    result, failed = run_module(mod, args)
    assert failed and why in result["msg"] and "nothing was changed" in result["msg"]
    assert set(f["status"] for f in result["findings"]) == {"error"}
    assert not (root / "etc/aide").exists() and not aide_runs(fake)


def test_directories_someone_else_owns_are_refused_before_anything_changes(tree, run_module, monkeypatch):
    root, fake = tree
    (root / "etc/aide").mkdir()
    os.chown(root / "etc/aide", 1000, 1000)
    installs = []
    monkeypatch.setattr(_packages, "missing", lambda _module, names: list(names))  # apt would run
    monkeypatch.setattr(_packages, "install", lambda *args, **kwargs: installs.append(args))
    result, failed = run_module(mod, {"packages": ["aide"]})
    assert failed and "/etc/aide is owned by uid 1000" in result["msg"] and "nothing was changed" in result["msg"]
    assert not (root / "etc/aide/yoroi.conf").exists() and not aide_runs(fake) and not installs
    os.chown(root / "etc/aide", 0, 0)
    (root / "var/lib/yoroi").mkdir()
    (root / "var/lib/yoroi/aide").symlink_to(root / "tmp")
    result, failed = run_module(mod, {})
    assert failed and "/var/lib/yoroi/aide is a symlink" in result["msg"]
    assert not (root / "etc/aide/yoroi.conf").exists()
    audit = run_module(mod, {}, check_mode=True)[0]  # an audit reports it
    assert "/var/lib/yoroi/aide is a symlink" in audit["findings"][1]["evidence"]


def test_a_policy_aide_rejects_is_never_written(tree, run_module):
    # the fake AIDE accepts only the default policy: here it rejects the candidate
    root, fake = tree
    result, failed = run_module(mod, {"extra_paths": ["/opt/app"]})
    assert failed and "validation failed" in result["msg"], result
    assert set(f["status"] for f in result["findings"]) == {"error"}
    assert not (root / "etc/aide/yoroi.conf").exists() and not aide_runs(fake)
    assert not list((root / "etc/aide").iterdir())  # no candidate left behind
