"""The time_sync module on a tmp tree: Debian's chrony.conf and unit as recorded, and a
fake host behind the commands (dpkg, apt, systemctl, chronyc) that answers with the
outputs recorded on lab hosts. Audit, apply, a second apply and an audit after it."""

import importlib.util
import os
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import time_sync as mod

RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "test_time_sync_recorded.py"
SERVERS = ["ntp1.example.org", "192.0.2.123"]


def recorded():
    spec = importlib.util.spec_from_file_location("time_sync_recorded", RECORDED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REC = recorded()


class FakeHost(object):
    """Packages and units as dpkg and systemctl would report them; chronyd synchronizes
    once it runs with a sources file."""

    def __init__(self, root, installed=(), units=None):
        self.root = root
        self.installed = set(installed)
        self.units = units or {}
        self.calls = []

    def unit(self, name):
        return self.units.setdefault(name, {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": "",
                                            "ConditionResult": "no"})

    def install(self, _module, names, _cache, replace=(), recommends=True):
        self.calls.append(("apt", tuple(names), tuple(replace)))
        for name in replace:
            self.installed.discard(name)
            for unit, package in (("systemd-timesyncd.service", "systemd-timesyncd"), ("chrony.service", "chrony")):
                if package == name:
                    self.units.pop(unit, None)
        self.installed.update(names)
        if "chrony" in names:
            # Debian's postinst enables and starts it; in a container its condition fails
            self.units["chrony.service"] = {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "enabled",
                                            "ConditionResult": "no", "ConditionTimestamp": "Sat 2026-11-28 02:24:53 UTC"}

    def missing(self, _module, names):
        return [name for name in names if name not in self.installed]

    def run(self, _module, argv):
        self.calls.append(tuple(argv))
        if argv[:2] == ["systemctl", "show"]:
            blocks = []
            for name in argv[4:]:
                state = self.unit(name)
                blocks.append("Id=%s\n%s" % (name, "".join("%s=%s\n" % item for item in sorted(state.items()))))
            return 0, "\n".join(blocks), ""
        if argv[0] == "systemctl":
            action = argv[1]
            if action == "daemon-reload":
                return 0, "", ""
            state = self.unit(argv[2])
            # chrony.service's ConditionCapability=CAP_SYS_TIME fails in a container without the drop-in
            blocked = argv[2] == "chrony.service" and (self.root / "run/.containerenv").exists() and \
                not (self.root / mod.tim.CLOCK_DROPIN.lstrip("/")).exists()
            if action in ("start", "restart") and state["LoadState"] == "loaded":
                state.update(ActiveState="inactive" if blocked else "active", ConditionResult="no" if blocked else "yes",
                             ConditionTimestamp="Sat 2026-11-28 02:25:00 UTC")
            elif action == "stop":
                state["ActiveState"] = "inactive"
            elif action == "enable":
                state["UnitFileState"] = "enabled"
            elif action == "disable":
                state["UnitFileState"] = "disabled"
            return 0, "", ""
        if argv[:3] == ["chronyc", "-n", "tracking"]:
            if (self.root / mod.tim.SOURCES_FILE.lstrip("/")).exists():
                return 0, REC.BOOKWORM_TRACKING_SYNCED, ""
            return 0, REC.BOOKWORM_TRACKING_STARTING, ""
        raise AssertionError("unexpected command %r" % (argv,))


@pytest.fixture
def host(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for directory in ("etc/chrony/conf.d", "etc/chrony/sources.d", "usr/lib/systemd/system", "run"):
        (root / directory).mkdir(parents=True)
    (root / "run/.containerenv").write_text("")
    (root / "usr/lib/systemd/system/chrony.service").write_text(REC.TRIXIE_CHRONY_SERVICE)
    fake = FakeHost(root)
    monkeypatch.setattr(mod, "ROOT", str(root))
    monkeypatch.setattr(mod, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(mod, "run", fake.run)
    monkeypatch.setattr(_packages, "missing", fake.missing)
    monkeypatch.setattr(_packages, "install", fake.install)
    return fake


def chrony_installed(host):
    """The package's files, as apt would leave them."""
    (host.root / "etc/chrony/chrony.conf").write_text(REC.BOOKWORM_CHRONY_CONF)
    host.installed.add("chrony")
    # never started (ConditionResult is "no" then too, with no time stamp)
    host.units["chrony.service"] = {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "enabled",
                                    "ConditionResult": "no", "ConditionTimestamp": ""}


def statuses(result):
    return [(f["control"], f["status"]) for f in result["findings"]]


def snapshot(root):
    return dict((str(p), (p.stat().st_mtime_ns, p.read_text())) for p in sorted(root.rglob("*")) if p.is_file())


ARGS = {"servers": SERVERS, "packages": ["chrony"], "wait": 1}


def test_audit_apply_second_apply_and_audit(host, run_module, monkeypatch):
    # the audit installs nothing, writes nothing, waits for nothing
    before = snapshot(host.root)
    result, failed = run_module(mod, ARGS, check_mode=True)
    assert not failed and result["changed"]
    assert statuses(result) == [("TIM-001", "fail"), ("TIM-002", "fail"), ("TIM-003", "fail")]
    assert result["findings"][0]["actual"] == "chrony not installed"
    assert result["findings"][2]["actual"] == "not synchronized: chrony.service is not running"
    assert snapshot(host.root) == before and not [c for c in host.calls if c[0] == "apt"]

    # the package arrives with Debian's chrony.conf
    def install(_module, names, cache, replace=(), recommends=True):
        FakeHost.install(host, _module, names, cache, replace)
        (host.root / "etc/chrony/chrony.conf").write_text(REC.BOOKWORM_CHRONY_CONF)
    monkeypatch.setattr(_packages, "install", install)
    result, failed = run_module(mod, ARGS, diff=True)
    assert not failed and result["changed"] and result["packages_installed"] == ["chrony"]
    assert statuses(result) == [("TIM-001", "fixed"), ("TIM-002", "fixed"), ("TIM-003", "fixed")]
    assert "chronyd -x" in result["findings"][0]["evidence"] and "podman" in result["findings"][0]["evidence"]
    assert "reference 0A590102 (10.89.1.2)" in result["findings"][2]["actual"]
    assert (host.root / "etc/chrony/sources.d/yoroi.sources").read_text().splitlines()[1:] == [
        "server ntp1.example.org iburst", "server 192.0.2.123 iburst"]
    assert "# yoroi (TIM-002): pool 2.debian.pool.ntp.org iburst" in (host.root / "etc/chrony/chrony.conf").read_text()
    assert (host.root / mod.tim.CLOCK_DROPIN.lstrip("/")).read_text().endswith("ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x\n")
    assert ("systemctl", "daemon-reload") in host.calls and ("systemctl", "restart", "chrony.service") in host.calls
    assert sorted(d["after_header"] for d in result["diff"]) == sorted(
        [mod.tim.CHRONY_CONF, mod.tim.SOURCES_FILE, mod.tim.CLOCK_DROPIN])

    # a second apply: nothing written, nothing restarted
    host.calls[:] = []
    before = snapshot(host.root)
    result, failed = run_module(mod, ARGS)
    assert not failed and not result["changed"]
    assert statuses(result) == [("TIM-001", "pass"), ("TIM-002", "pass"), ("TIM-003", "pass")]
    assert snapshot(host.root) == before
    assert not [c for c in host.calls if c[0] == "systemctl" and c[1] != "show"]

    # and the audit agrees
    result, failed = run_module(mod, ARGS, check_mode=True)
    assert not failed and not result["changed"]
    assert statuses(result) == [("TIM-001", "pass"), ("TIM-002", "pass"), ("TIM-003", "pass")]


def test_without_site_servers_nothing_changes(host, run_module):
    chrony_installed(host)
    before = snapshot(host.root)
    for check_mode in (True, False):
        result, failed = run_module(mod, dict(ARGS, servers=[]), check_mode=check_mode)
        assert not failed and not result["changed"]
        assert statuses(result) == [("TIM-001", "fail"), ("TIM-002", "fail"), ("TIM-003", "fail")]
        assert result["findings"][1]["actual"] == "no site time servers set"
    assert snapshot(host.root) == before
    assert not [c for c in host.calls if c[0] == "apt" or (c[0] == "systemctl" and c[1] != "show")]


def test_another_time_daemon_is_stopped_and_its_package_replaced(host, run_module):
    host.installed.add("systemd-timesyncd")
    host.units["systemd-timesyncd.service"] = {"LoadState": "loaded", "ActiveState": "active",
                                               "UnitFileState": "enabled", "ConditionResult": "yes"}
    result, _failed = run_module(mod, ARGS, check_mode=True)
    assert "also: systemd-timesyncd.service active, enabled" in result["findings"][0]["actual"]
    result, failed = run_module(mod, ARGS)
    assert not failed
    assert ("systemctl", "stop", "systemd-timesyncd.service") in host.calls
    assert ("systemctl", "disable", "systemd-timesyncd.service") in host.calls
    assert ("apt", ("chrony",), ("systemd-timesyncd",)) in host.calls
    assert "systemd-timesyncd" not in host.installed


def test_clock_control_set_removes_the_dropin(host, run_module):
    chrony_installed(host)
    run_module(mod, ARGS)
    dropin = host.root / mod.tim.CLOCK_DROPIN.lstrip("/")
    assert dropin.exists()
    result, failed = run_module(mod, dict(ARGS, clock_control="set"))
    assert not failed and result["changed"] and not dropin.exists()
    assert list(dropin.parent.glob("yoroi-clock.conf.*~")), "no backup of the removed drop-in"


def test_a_source_in_another_file_is_reported_not_edited(host, run_module):
    chrony_installed(host)
    other = host.root / "etc/chrony/conf.d/old.conf"
    other.write_text("server time.example.net iburst\n")
    result, _failed = run_module(mod, ARGS)
    found = dict((f["control"], f) for f in result["findings"])
    assert found["TIM-002"]["status"] == "fail"
    assert "server time.example.net (/etc/chrony/conf.d/old.conf): not a site server" in found["TIM-002"]["actual"]
    assert other.read_text() == "server time.example.net iburst\n"


@pytest.mark.parametrize("server", ["a b", "x\nserver evil", "-x", ""])
def test_a_malformed_server_is_refused_before_any_change(host, run_module, server):
    before = snapshot(host.root)
    result, failed = run_module(mod, dict(ARGS, servers=[server]))
    assert failed and result["msg"].startswith("refused: time server")
    assert statuses(result) == [("TIM-001", "error"), ("TIM-002", "error"), ("TIM-003", "error")]
    assert snapshot(host.root) == before and host.calls == []


def test_timesyncd_dropin_and_kernel_flag(host, run_module, monkeypatch):
    host.installed.add("systemd-timesyncd")
    host.units["systemd-timesyncd.service"] = {"LoadState": "loaded", "ActiveState": "active",
                                               "UnitFileState": "enabled", "ConditionResult": "yes"}
    os.remove(host.root / "run/.containerenv")
    answers = {("timedatectl", "show", "-p", "NTPSynchronized"): "NTPSynchronized=yes\n",
               ("timedatectl", "timesync-status"): REC.BOOKWORM_TIMESYNC_STATUS,
               ("timedatectl", "show-timesync"): REC.BOOKWORM_SHOW_TIMESYNC}
    fake_run = host.run
    monkeypatch.setattr(mod, "run", lambda m, argv: (0, answers[tuple(argv)], "") if argv[0] == "timedatectl" else fake_run(m, argv))
    args = dict(ARGS, daemon="timesyncd", packages=["systemd-timesyncd"])
    result, failed = run_module(mod, args)
    assert not failed and result["changed"]
    assert statuses(result) == [("TIM-001", "pass"), ("TIM-002", "fixed"), ("TIM-003", "pass")]
    text = (host.root / mod.tim.TIMESYNCD_DROPIN.lstrip("/")).read_text()
    assert "NTP=\nNTP=ntp1.example.org 192.0.2.123\nFallbackNTP=\nFallbackNTP=ntp1.example.org 192.0.2.123\n" in text
    assert "offset +0.082 ms" in result["findings"][2]["actual"]
    result, _failed = run_module(mod, args)
    assert not result["changed"]


def test_a_unit_whose_condition_fails_is_not_started_again_and_again(host, run_module):
    # chronyd set to set the clock in a container: its ConditionCapability fails, which is
    # reported; once the files are right, another apply changes nothing
    chrony_installed(host)
    args = dict(ARGS, clock_control="set")
    result, _failed = run_module(mod, args)
    assert result["changed"] and result["findings"][0]["status"] == "fail"
    assert "start condition not met" in result["findings"][0]["actual"]
    host.calls[:] = []
    result, _failed = run_module(mod, args)
    assert not result["changed"] and not [c for c in host.calls if c[0] == "systemctl" and c[1] != "show"]
    assert result["findings"][2]["actual"] == "not synchronized: chrony.service is not running"
