"""The patching module on a tmp tree and a fake host whose apt answers with the simulation
recorded on a bookworm lab host (module_utils/recorded/patching): an audit, an upgrade, a
second upgrade and an audit after it; the baseline's configure that never upgrades; holds;
unattended upgrades; health."""

import os
from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import patching as mod

RECORDED = Path(__file__).resolve().parents[1] / "module_utils" / "recorded" / "patching"
SIMULATION = (RECORDED / "bookworm-dist-upgrade.txt").read_text()
SUITE_TIME = 1795834932


class FakeHost(object):
    """apt, dpkg and systemd as the recorded outputs say: the pending updates are the
    recorded simulation's Inst lines, less what was held or upgraded since."""

    def __init__(self, root):
        self.root = root
        self.held = set()
        self.upgraded = set()
        self.installed = {"tzdata", "openssl", "yoroi-patch-probe"}
        self.apt_config = (RECORDED / "apt-config-minbase.txt").read_text()
        self.needrestart = None
        self.active = {}
        self.calls = []
        self.fail_upgrade = False

    def pending_lines(self, argv):
        lines = []
        for line in SIMULATION.splitlines():
            name = line.split()[1] if line.startswith(("Inst ", "Conf ")) else None
            if name and ((name in self.held and "--ignore-hold" not in argv) or name in self.upgraded):
                continue
            lines.append(line)
        return "\n".join(lines)

    def tool(self, _module, argv):
        self.calls.append(tuple(argv))
        if argv[0] == "apt-get" and "-s" in argv:
            return 0, self.pending_lines(argv)
        if argv[0] == "apt-get" and argv[-1] == "update":
            return 0, "Reading package lists..."
        if argv[0] == "apt-get" and "--only-upgrade" in argv:
            if self.fail_upgrade:
                return 100, "E: Sub-process /usr/bin/dpkg returned an error code (1)"
            names = argv[argv.index("--") + 1:]
            assert not set(names) & self.held, "a held package was asked for"
            self.upgraded.update(names)
            return 0, ""
        if argv[:2] == ["apt-mark", "showhold"]:
            return 0, "\n".join(sorted(self.held))
        if argv[:2] == ["apt-mark", "hold"]:
            self.held.update(argv[3:])
            return 0, ""
        if argv[:2] == ["apt-config", "dump"]:
            return 0, self.apt_config
        if argv[0] == "needrestart":
            return (None, "needrestart not found") if self.needrestart is None else (0, self.needrestart)
        if argv[:2] == ["systemctl", "is-active"]:
            state = self.active.get(argv[-1], "inactive")
            return (0 if state == "active" else 3), state
        raise AssertionError("unexpected command %r" % (argv,))

    def missing(self, _module, names):
        return [name for name in names if name not in self.installed]

    def install(self, _module, names, _cache, replace=(), recommends=True):
        self.calls.append(("install",) + tuple(names))
        self.installed.update(names)
        if "unattended-upgrades" in names:
            self.apt_config = (RECORDED / "apt-config-unattended.txt").read_text()


@pytest.fixture
def host(tmp_path, monkeypatch):
    root = tmp_path / "root"
    lists = root / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    for name, source in (("lab_dists_bookworm-security_Release", "lab-Release"),
                         ("deb.debian.org_debian-security_dists_bookworm-security_InRelease",
                          "debian-security-InRelease.head")):
        (lists / name).write_text((RECORDED / source).read_text())
        os.utime(lists / name, (SUITE_TIME, SUITE_TIME))
    (root / "etc/apt/apt.conf.d").mkdir(parents=True)
    (root / "run").mkdir()
    fake = FakeHost(root)
    monkeypatch.setattr(mod, "ROOT", str(root))
    monkeypatch.setattr(mod, "tool", fake.tool)
    monkeypatch.setattr(_packages, "missing", fake.missing)
    monkeypatch.setattr(_packages, "install", fake.install)
    return fake


def statuses(result):
    return [(f["control"], f["status"]) for f in result["findings"]]


def changing(host):
    return [c for c in host.calls if c[0] == "install" or (c[0] == "apt-get" and "-s" not in c)
            or c[:2] == ("apt-mark", "hold")]


def snapshot(root):
    return dict((str(p), (p.stat().st_mtime_ns, p.read_text())) for p in sorted(root.rglob("*")) if p.is_file())


UPGRADE = {"state": "upgrade", "max_pending_days": 0, "hold": ["tzdata"]}


def test_audit_upgrade_second_upgrade_and_audit(host, run_module):
    before = snapshot(host.root)
    result, failed = run_module(mod, UPGRADE, check_mode=True)
    assert not failed and result["changed"]
    assert statuses(result) == [("PAT-001", "fail"), ("PAT-002", "pass"), ("PAT-003", "pass"), ("PAT-004", "skipped"),
                                ("PAT-005", "pass"), ("PAT-006", "fail")]
    assert "yoroi-patch-probe 1.0->1.1" in result["findings"][0]["evidence"]
    assert "tzdata" not in [u.split()[0] for u in result["to_upgrade"]]  # held first
    assert snapshot(host.root) == before and changing(host) == []

    result, failed = run_module(mod, UPGRADE)
    assert not failed and result["changed"], result
    assert statuses(result) == [("PAT-001", "fail"), ("PAT-002", "pass"), ("PAT-003", "pass"), ("PAT-004", "skipped"),
                                ("PAT-005", "pass"), ("PAT-006", "fixed")]
    # tzdata is held: not upgraded, and its security update is still pending (named, held)
    assert result["findings"][0]["evidence"].startswith("tzdata 2026b-0+deb12u1->2026f-0+deb12u1 (")
    assert result["findings"][0]["evidence"].endswith(", held)")
    assert "held: tzdata" in result["findings"][5]["evidence"]
    assert [c for c in host.calls if c[0] == "apt-get" and "-s" in c][0][-2:] == ("--ignore-hold", "dist-upgrade")
    assert "yoroi-patch-probe 1.0->1.1" in result["upgraded"] and len(result["upgraded"]) == 15
    assert result["findings"][0]["upgraded"] == result["upgraded"]
    assert ("apt-mark", "hold", "--", "tzdata") in host.calls
    upgrade = [c for c in host.calls if "--only-upgrade" in c][0]
    assert "--force-confold" in " ".join(upgrade) and "tzdata" not in upgrade

    host.calls[:] = []
    result, failed = run_module(mod, UPGRADE)
    assert not failed and not result["changed"] and result["upgraded"] == []
    assert [c for c in changing(host) if c[-1] != "update"] == []  # only apt's lists refreshed

    result, failed = run_module(mod, UPGRADE, check_mode=True)
    assert not failed and not result["changed"] and result["to_upgrade"] == []


def test_without_a_hold_everything_pending_is_upgraded_and_pat_001_is_fixed(host, run_module):
    result, failed = run_module(mod, {"state": "upgrade", "max_pending_days": 0})
    assert not failed and len(result["upgraded"]) == 16
    assert dict(statuses(result))["PAT-001"] == "fixed"
    assert result["pending"] == []


def test_the_baseline_configure_never_upgrades(host, run_module):
    for check_mode in (True, False):
        result, failed = run_module(mod, {"state": "configure", "max_pending_days": 0}, check_mode=check_mode)
        assert not failed and not result["changed"]
        assert dict(statuses(result))["PAT-001"] == "fail"
    assert changing(host) == [] and host.upgraded == set()


def test_a_failed_upgrade_fails_the_host_with_findings(host, run_module):
    host.fail_upgrade = True
    result, failed = run_module(mod, {"state": "upgrade", "max_pending_days": 0})
    assert failed and "dpkg returned an error" in result["msg"]
    assert dict(statuses(result))["PAT-001"] == "error"


def test_unattended_upgrades_enabled_installs_and_writes_the_periodic_file(host, run_module):
    args = {"state": "configure", "unattended": "enabled"}
    result, failed = run_module(mod, args, check_mode=True)
    assert not failed and result["changed"] and result["packages_to_install"] == ["unattended-upgrades"]
    assert dict(statuses(result))["PAT-005"] == "fail"
    result, failed = run_module(mod, args, diff=True)
    assert not failed and result["changed"]
    assert dict(statuses(result))["PAT-005"] == "pass"  # Debian's postinst enabled it already (recorded)
    assert ("install", "unattended-upgrades") in host.calls
    written = (host.root / "etc/apt/apt.conf.d/20auto-upgrades").read_text()
    assert 'APT::Periodic::Unattended-Upgrade "1";' in written
    before = snapshot(host.root)
    result, failed = run_module(mod, args)
    assert not failed and not result["changed"] and snapshot(host.root) == before


def test_needrestart_and_a_pending_reboot_are_reported(host, run_module):
    host.needrestart = (RECORDED / "needrestart-b.txt").read_text()
    (host.root / "run/reboot-required").write_text("*** System restart required ***\n")
    (host.root / "run/reboot-required.pkgs").write_text("libc6\n")
    result, failed = run_module(mod, {"state": "configure"}, check_mode=True)
    assert not failed and result["reboot_required"]
    found = dict((f["control"], f) for f in result["findings"])
    assert found["PAT-003"]["status"] == "fail" and found["PAT-003"]["evidence"] == "packages: libc6"
    assert found["PAT-004"]["status"] == "fail" and "ssh.service" in found["PAT-004"]["evidence"]
    assert ("needrestart", "-b", "-r", "l") in host.calls


def test_a_malformed_hold_is_refused_before_anything(host, run_module):
    result, failed = run_module(mod, {"state": "upgrade", "hold": ["openssl", "-y"]})
    assert failed and result["msg"].startswith("refused: not a Debian package name")
    assert set(f["status"] for f in result["findings"]) == {"error"} and host.calls == []


def test_health(host, run_module, monkeypatch):
    monkeypatch.setattr(mod, "read_sockets", lambda _proc: [("tcp", "0.0.0.0", 22, "1"), ("tcp6", "::", 8080, "2")])
    host.active = {"ssh.service": "active", "nginx.service": "failed"}
    result, failed = run_module(mod, {"state": "health", "services": ["ssh.service"], "ports": ["22", "tcp/8080"]})
    assert not failed and result["healthy"] and result["findings"][0]["status"] == "pass"
    result, failed = run_module(mod, {"state": "health", "services": ["ssh.service", "nginx.service"], "ports": ["443"]})
    assert not failed and not result["healthy"]
    assert result["problems"] == ["nginx.service is failed", "nothing listens on tcp/443"]
    assert not result["changed"]
    result, failed = run_module(mod, {"state": "health", "ports": ["ssh"]})
    assert failed and "not a port" in result["msg"]
