"""Unneeded network services: the allowlist and the stop plan, on /proc/net tables recorded
on a bookworm lab host (``ss -ltnp`` there: sshd on 0.0.0.0:22 and [::]:22, python3 on
127.0.0.1:8088 and [::1]:8089)."""

from pathlib import Path

import pytest

from ansible_collections.yoroi.baseline.plugins.module_utils import _assets
from ansible_collections.yoroi.baseline.plugins.module_utils import _services as svc

DATA = Path(__file__).resolve().parents[1] / "data" / "assets"
SSHD = {(101, "sshd")}
PY = {(202, "python3")}
UNITS = {101: "ssh.service", 202: "stray.service"}


def recorded():
    return _assets.parse_proc_net((DATA / "proc-net-tcp.http-server").read_text(), "tcp") + \
        _assets.parse_proc_net((DATA / "proc-net-tcp6.http-server").read_text(), "tcp6")


def found(owners=None):
    owners = owners or {"2048666": SSHD, "2048677": SSHD, "2062904": PY, "2062956": PY}
    return svc.listeners(recorded(), owners, UNITS)


def test_listeners_carry_process_and_unit():
    assert found()[0] == {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "processes": ["sshd"], "units": ["ssh.service"]}
    assert [(item["address"], item["port"]) for item in found()] == [("0.0.0.0", 22), ("::", 22), ("127.0.0.1", 8088), ("::1", 8089)]


@pytest.mark.parametrize("allowlist, loopback, failing", [
    # the default: ssh; the python listeners are loopback only
    (list(svc.DEFAULT_ALLOWLIST), True, []),
    (list(svc.DEFAULT_ALLOWLIST), False, ["tcp/8088", "tcp/8089"]),
    (list(svc.DEFAULT_ALLOWLIST) + [{"port": 8088, "protocol": "tcp", "process": "python3"}], False, ["tcp/8089"]),
    # the process must match when the entry names one
    ([{"port": 22, "protocol": "tcp", "process": "dropbear"}], True, ["tcp/22", "tcp/22"]),
    # the protocol must match
    ([{"port": 22, "protocol": "udp", "process": None}], True, ["tcp/22", "tcp/22"]),
    ([{"port": 22, "protocol": "tcp", "process": None}], True, []),
    ([], True, ["tcp/22", "tcp/22"]),
])
def test_allowlist(allowlist, loopback, failing):
    findings = svc.allowlist_findings(found(), allowlist, loopback)
    assert [f["subject"] for f in findings if f["status"] == "fail"] == failing
    if not failing:
        assert [f["status"] for f in findings] == ["pass"] and "sshd" in findings[0]["actual"]


def test_a_stray_listener_is_named_with_port_process_and_unit():
    stray = [("tcp", "0.0.0.0", 8089, "9")]
    findings = svc.allowlist_findings(svc.listeners(stray, {"9": PY}, UNITS), list(svc.DEFAULT_ALLOWLIST), True)
    assert findings[0]["status"] == "fail"
    assert findings[0]["actual"] == "listening, not on the allowlist: tcp 0.0.0.0:8089 python3 (stray.service)"


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.0.0.53", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("fe80::1", False), ("nonsense", False),
])
def test_loopback(address, loopback):
    assert svc.is_loopback(address) is loopback


@pytest.mark.parametrize("text, unit", [
    ("0::/system.slice/ssh.service\n", "ssh.service"),
    ("0::/system.slice/system-getty.slice/getty@tty1.service\n", "getty@tty1.service"),
    ("0::/user.slice/user-1000.slice/session-3.scope\n", ""),
    ("0::/init.scope\n", "init.scope"),
    ("", ""),
])
def test_unit_of_cgroup(text, unit):
    assert svc.unit_of_cgroup(text) == unit


def test_unit_names():
    assert svc.unit_name("apache2") == "apache2.service" and svc.unit_name("cups.socket") == "cups.socket"


RUNNING = {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}
STOPPED = {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "disabled"}
TRANSIENT = {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": ""}
MISSING = {"LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": ""}


def test_parse_show():
    assert svc.parse_show("LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n") == RUNNING


@pytest.mark.parametrize("state, actions", [
    (RUNNING, ["stop", "disable"]),
    (TRANSIENT, ["stop"]),
    (dict(STOPPED, UnitFileState="enabled"), ["disable"]),
    (STOPPED, None),
    (MISSING, None),
])
def test_plan_stops(state, actions):
    planned, refused = svc.plan_stops(["x.service"], {"x.service": state}, {})
    assert planned.get("x.service") == actions and not refused


def test_sshd_and_what_listens_on_the_ssh_port_are_never_stopped():
    protected = svc.ssh_protected_units(found(), ["22"])
    assert protected["ssh.service"] == "sshd's own unit"
    moved = svc.ssh_protected_units(found(), ["8089"])
    assert moved["stray.service"] == "listens on the SSH port 8089"
    planned, refused = svc.plan_stops(["ssh.service", "stray.service"], {"ssh.service": RUNNING, "stray.service": RUNNING}, moved)
    assert planned == {} and set(refused) == {"ssh.service", "stray.service"}
    findings = svc.stop_findings(["ssh.service"], {"ssh.service": RUNNING}, {}, planned, refused, {}, False)
    assert findings[0]["status"] == "fail" and "refused" in findings[0]["evidence"]


@pytest.mark.parametrize("before, after, check_mode, status", [
    (RUNNING, STOPPED, False, "fixed"),     # apply
    (STOPPED, STOPPED, False, "pass"),      # a second apply: nothing to do
    (RUNNING, RUNNING, True, "fail"),       # check mode: nothing changes, it still runs
    (STOPPED, STOPPED, True, "pass"),
    (MISSING, MISSING, False, "pass"),
    (RUNNING, RUNNING, False, "fail"),      # stop did not take (a unit restarted by another)
])
def test_stop_findings(before, after, check_mode, status):
    planned, refused = svc.plan_stops(["x.service"], {"x.service": before}, {})
    findings = svc.stop_findings(["x.service"], {"x.service": before}, {"x.service": after}, planned, refused, {}, check_mode)
    assert [(f["control"], f["status"], f["subject"]) for f in findings] == [("SVC-002", status, "x.service")]


def test_a_failed_stop_is_an_error():
    findings = svc.stop_findings(["x.service"], {"x.service": RUNNING}, {"x.service": RUNNING},
                                 {"x.service": ["stop"]}, {}, {"x.service": "systemctl stop failed: boom"}, False)
    assert findings[0]["status"] == "error" and "boom" in findings[0]["evidence"]


def test_no_listed_unit_no_svc_002():
    assert svc.stop_findings([], {}, {}, {}, {}, {}, False) == []
