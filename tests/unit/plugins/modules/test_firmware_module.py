"""The firmware module on a fake host whose fwupdmgr answers with the JSON recorded on a
bookworm lab host (fwupd 2.0.20, its test devices on): audit, apply, a second apply and
an audit after it; fwupd missing, refused in a container, not answering; a local directory
of .cab files. Nothing here runs fwupd."""

from pathlib import Path

import pytest

from ansible.module_utils import basic

from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import firmware as mod

REC = Path(__file__).resolve().parents[1] / "module_utils" / "recorded" / "fwupd"
WEBCAM = "08d460be0f1f9f128413f816022a6439e0078018"
ALLOWED = {"packages": ["fwupd"], "remotes": ["fwupd-tests"]}


def text(name):
    return (REC / name).read_text()


class FakeFwupd(object):
    """fwupdmgr as recorded: the webcam at 1.2.2 until `install` puts 1.2.4 on it."""

    def __init__(self, installed=True, answers=True, install_rc=0):
        self.installed = installed
        self.answers = answers
        self.install_rc = install_rc
        self.updated = False
        self.calls = []

    def run(self, _module, args):
        self.calls.append(tuple(args))
        if not self.answers:
            return 1, text("trixie-get-devices-daemon-failed.json"), ""
        command = args[0]
        if command == "get-remotes":
            return 0, text("bookworm-get-remotes.json"), ""
        if command == "get-devices":
            return 0, text("bookworm-get-devices-after.json" if self.updated else "bookworm-get-devices.json"), ""
        if command == "get-updates":
            return 0, text("bookworm-get-updates-after.json" if self.updated else "bookworm-get-updates.json"), ""
        if command == "refresh":
            return 1, text("bookworm-refresh-offline.json"), ""
        if command == "install":
            assert args[1:3] == [WEBCAM, "1.2.4"] and "--assume-yes" in args, args
            self.updated = self.install_rc == 0
            return self.install_rc, "", "" if self.install_rc == 0 else "device is busy"
        raise AssertionError(args)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    host = FakeFwupd()
    monkeypatch.setattr(mod, "ROOT", str(tmp_path))
    monkeypatch.setattr(mod, "fwupdmgr", host.run)
    monkeypatch.setattr(mod, "refuses_here", lambda module: None)
    monkeypatch.setattr(_packages, "missing", lambda module, names: [] if host.installed else list(names))

    def install(_module, names, _cache, replace=(), recommends=True):
        assert not recommends
        host.calls.append(("apt",) + tuple(names))
        host.installed = True

    monkeypatch.setattr(_packages, "install", install)
    real = basic.AnsibleModule.get_bin_path
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, *a, **k: ("/usr/bin/fwupdmgr" if host.installed else None) if name == "fwupdmgr"
                        else real(self, name, *a, **k))
    return host


def statuses(result):
    return [(f["control"], f["status"]) for f in result["findings"]]


def test_audit_apply_second_apply_audit(run_module, fake):
    args = dict(ALLOWED, policy="apply")
    result, failed = run_module(mod, args, check_mode=True)
    assert not failed and result["changed"], result
    assert statuses(result) == [("FWU-001", "fail"), ("FWU-002", "pass"), ("FWU-003", "pass")]
    assert result["pending"] == [{"device": "Integrated Webcam?", "id": WEBCAM, "to": "1.2.4", "remote": "fwupd-tests"}]
    assert not [c for c in fake.calls if c[0] in ("install", "refresh")], "check mode changed the host"

    result, failed = run_module(mod, args)
    assert not failed and result["changed"]
    assert statuses(result) == [("FWU-001", "fixed"), ("FWU-002", "pass"), ("FWU-003", "pass")]
    assert result["installed"] == [{"device": "Integrated Webcam?", "id": WEBCAM, "before": "1.2.2", "to": "1.2.4",
                                    "remote": "fwupd-tests", "rc": 0}]
    assert result["reboot_required"] is False
    assert [d["version"] for d in result["devices"] if d["updatable"]] == ["1.2.4"]
    # no download remote allowed: nothing refreshed
    assert not [c for c in fake.calls if c[0] == "refresh"]

    calls = len(fake.calls)
    result = run_module(mod, args)[0]
    assert not result["changed"] and statuses(result)[0] == ("FWU-001", "pass")
    assert not [c for c in fake.calls[calls:] if c[0] == "install"]
    result = run_module(mod, args, check_mode=True)[0]
    assert not result["changed"] and statuses(result)[0] == ("FWU-001", "pass")


def test_report_only_changes_nothing_and_fails(run_module, fake):
    result = run_module(mod, dict(ALLOWED, policy="report"), check_mode=True)[0]
    assert not result["changed"] and statuses(result)[0] == ("FWU-001", "fail")
    result = run_module(mod, dict(ALLOWED, policy="report"))[0]
    assert not result["changed"] and statuses(result)[0] == ("FWU-001", "fail")
    assert not [c for c in fake.calls if c[0] == "install"]


def test_a_failed_install_is_an_error(run_module, fake):
    fake.install_rc = 1
    result, failed = run_module(mod, dict(ALLOWED, policy="apply"))
    assert statuses(result)[0] == ("FWU-001", "error") and "device is busy" in result["findings"][0]["evidence"]
    assert result["installed"][0]["rc"] == 1


def test_an_apply_refreshes_stale_download_metadata_and_reports_why_it_failed(run_module, fake):
    result = run_module(mod, {"packages": ["fwupd"], "remotes": ["lvfs"]}, check_mode=True)[0]
    assert not [c for c in fake.calls if c[0] == "refresh"], "an audit refreshed metadata"
    result = run_module(mod, {"packages": ["fwupd"], "remotes": ["lvfs"]})[0]
    assert [c for c in fake.calls if c[0] == "refresh"] == [("refresh", "--json")]
    fwu2 = [f for f in result["findings"] if f["control"] == "FWU-002"]
    assert [f["status"] for f in fwu2] == ["fail"] and "network is unreachable" in fwu2[0]["evidence"]
    assert not result["changed"]


def test_without_fwupd_the_audit_would_install_it(run_module, fake):
    fake.installed = False
    result = run_module(mod, ALLOWED, check_mode=True)[0]
    assert result["changed"] and result["packages_to_install"] == ["fwupd"]
    assert statuses(result) == [("FWU-001", "fail"), ("FWU-002", "fail"), ("FWU-003", "skipped")]
    assert result["findings"][0]["actual"] == "fwupd is not installed (an apply installs it)"
    result = run_module(mod, ALLOWED)[0]
    assert ("apt", "fwupd") in fake.calls and result["packages_installed"] == ["fwupd"]
    assert statuses(result)[0] == ("FWU-001", "fail")  # report policy: the webcam stays at 1.2.2


def test_in_a_container_that_fwupd_refuses_everything_is_skipped(run_module, fake, monkeypatch):
    monkeypatch.setattr(mod, "refuses_here", lambda module: "fwupd does not run in a container (podman: ...)")
    result = run_module(mod, ALLOWED, check_mode=True)[0]
    assert statuses(result) == [("FWU-001", "skipped"), ("FWU-002", "skipped"), ("FWU-003", "skipped")]
    assert not fake.calls, "fwupd was asked"


def test_fwupd_not_answering_is_an_error_not_a_failed_host(run_module, fake):
    fake.answers = False
    result, failed = run_module(mod, ALLOWED, check_mode=True)
    assert not failed and [s for _c, s in statuses(result)] == ["error", "error", "error"]
    assert "Failed to connect to daemon" in result["findings"][0]["evidence"]


def test_no_updatable_device_is_skipped(run_module, fake, monkeypatch):
    real = fake.run

    def plain(module, args):
        if args[0] == "get-devices":
            return 0, text("bookworm-get-devices-no-test-devices.json"), ""
        if args[0] == "get-updates":
            return 2, text("bookworm-check-reboot-needed.json"), ""
        return real(module, args)

    monkeypatch.setattr(mod, "fwupdmgr", plain)
    result = run_module(mod, ALLOWED, check_mode=True)[0]
    assert statuses(result) == [("FWU-001", "skipped"), ("FWU-002", "skipped"), ("FWU-003", "pass")]
    assert result["findings"][0]["actual"] == "no updatable device"


def test_the_local_directory_remote_is_written_once_and_turned_off_after(run_module, fake, tmp_path):
    path = tmp_path / mod.fwu.LOCAL_REMOTE_FILE.lstrip("/")
    path.parent.mkdir(parents=True)
    args = dict(ALLOWED, local_dir="/srv/firmware")
    result = run_module(mod, args, check_mode=True)[0]
    assert result["changed"] and not path.exists()
    result = run_module(mod, args)[0]
    assert result["changed"] and "MetadataURI=file:///srv/firmware\n" in path.read_text()
    assert [f["subject"] for f in result["findings"] if f["control"] == "FWU-002"] == ["fwupd-tests", "yoroi-local"]
    mtime = path.stat().st_mtime_ns
    result = run_module(mod, args)[0]
    assert not result["changed"] and path.stat().st_mtime_ns == mtime
    result = run_module(mod, ALLOWED)[0]
    assert result["changed"] and "Enabled=false\n" in path.read_text()


@pytest.mark.parametrize("args,why", [
    ({"remotes": ["--force"]}, "not a remote id"),
    ({"exclude": ["Integrated Webcam"]}, "device id/GUID"),
    ({"local_dir": "/srv/../etc"}, "not an absolute, normalized path"),
    ({"max_metadata_age_days": 0}, "from 1 to 3650"),
])
def test_malformed_arguments_are_refused_before_anything(run_module, fake, args, why):
    result, failed = run_module(mod, dict(ALLOWED, policy="apply", **args))
    assert failed and why in result["msg"] and not fake.calls
    assert [s for _c, s in statuses(result)] == ["error", "error", "error"]
