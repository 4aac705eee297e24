# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unneeded network services: the listening sockets against the site's allowlist.

Pure functions. The sockets come from /proc/net (``_assets.parse_proc_net``) with their
processes and systemd units; the allowlist entries name a port, a protocol and
optionally the process. Units are stopped only when the policy names them, and never
sshd or a unit that listens on the SSH port.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, PASS, finding, fold

CONTROLS = {
    "SVC-001": "every listening socket is on the site's allowlist",
    "SVC-002": "the units the policy lists for stopping are stopped and disabled",
}
DEFAULT_ALLOWLIST = ({"port": 22, "protocol": "tcp", "process": "sshd"},)
# sshd's own units: never stopped, whatever the policy says
SSH_UNITS = ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
CGROUP_UNIT = re.compile(r"/([^/]+\.(?:service|socket|scope))$")


def unit_name(name):
    """``ssh`` -> ``ssh.service``; a name with a unit suffix is kept."""
    return name if re.search(r"\.(service|socket|scope|timer|target|mount|path)$", name) else name + ".service"


def unit_of_cgroup(text):
    """The systemd unit of a /proc/PID/cgroup text (``0::/system.slice/ssh.service``), or ""."""
    for line in (text or "").splitlines():
        path = line.split(":", 2)[-1].strip()
        match = CGROUP_UNIT.search(path)
        if match and not match.group(1).startswith("session-"):
            return match.group(1)
    return ""


def is_loopback(address):
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if parsed.version == 6 and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


def listeners(sockets, owners, units):
    """[{protocol, address, port, processes, units}] one per socket address, sorted.

    ``sockets``: [(protocol, address, port, inode)]; ``owners``: {inode: {(pid, name)}};
    ``units``: {pid: unit}. tcp6/udp6 are folded into tcp/udp.
    """
    merged = {}
    for protocol, address, port, inode in sockets:
        entry = merged.setdefault((protocol.rstrip("6"), address, port), (set(), set()))
        for pid, name in owners.get(inode, ()):
            entry[0].add(name)
            if units.get(pid):
                entry[1].add(units[pid])
    return [{"protocol": p, "address": a, "port": port, "processes": sorted(names), "units": sorted(found)}
            for (p, a, port), (names, found) in sorted(merged.items(), key=lambda item: (item[0][0], item[0][2], item[0][1]))]


def describe(listener):
    address = listener["address"]
    where = "[%s]" % address if ":" in address else address
    who = ", ".join(listener["processes"]) or "unknown process"
    if listener["units"]:
        who += " (%s)" % ", ".join(listener["units"])
    return "%s %s:%d %s" % (listener["protocol"], where, listener["port"], who)


def allowed(listener, allowlist, allow_loopback):
    """The reason a listener is allowed, or None."""
    if allow_loopback and is_loopback(listener["address"]):
        return "loopback only, allowed by policy"
    for entry in allowlist:
        if int(entry["port"]) != listener["port"]:
            continue
        if (entry.get("protocol") or "tcp") != listener["protocol"]:
            continue
        process = entry.get("process")
        if process and process not in listener["processes"]:
            continue
        return "allowlist: %s/%d%s" % (listener["protocol"], listener["port"], " " + process if process else "")
    return None


def allowlist_findings(found, allowlist, allow_loopback):
    """SVC-001: one fail per listener not on the allowlist, else one pass naming them all."""
    expected = CONTROLS["SVC-001"]
    listed = ", ".join("%s/%s%s" % (e.get("protocol") or "tcp", e["port"], " " + e["process"] if e.get("process") else "")
                       for e in allowlist) or "nothing"
    unlisted = [item for item in found if not allowed(item, allowlist, allow_loopback)]
    if not unlisted:
        return [finding("SVC-001", PASS, expected, "; ".join(describe(item) for item in found) or "nothing listens",
                        "allowlist: %s; loopback %s" % (listed, "allowed" if allow_loopback else "not allowed"))]
    return [finding("SVC-001", FAIL, expected, "listening, not on the allowlist: %s" % describe(item),
                    "/proc/net; allowlist: %s" % listed, subject="%s/%d" % (item["protocol"], item["port"]))
            for item in unlisted]


def ssh_protected_units(found, ssh_ports):
    """{unit: why} of the units that must never be stopped: sshd's and any unit listening
    on an SSH port."""
    protected = dict((unit, "sshd's own unit") for unit in SSH_UNITS)
    ports = set(int(port) for port in ssh_ports)
    for item in found:
        if item["port"] in ports and item["protocol"] == "tcp":
            for unit in item["units"]:
                protected.setdefault(unit, "listens on the SSH port %d" % item["port"])
    return protected


def parse_show(text):
    """{Key: value} of ``systemctl show -p LoadState,ActiveState,UnitFileState UNIT``."""
    values = {}
    for line in (text or "").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def stopped(state):
    """The unit is not running and will not start at boot (or does not exist)."""
    if state.get("LoadState") == "not-found":
        return True
    return state.get("ActiveState") in ("inactive", "failed") and \
        state.get("UnitFileState") not in ("enabled", "enabled-runtime", "static-enabled")


def plan_stops(units, states, protected):
    """({unit: [actions]}, {unit: why refused}): ``stop`` and ``disable`` per listed unit
    that runs or is enabled; a protected unit is refused, never stopped."""
    actions, refused = {}, {}
    for unit in units:
        if unit in protected:
            refused[unit] = protected[unit]
            continue
        state = states.get(unit, {})
        if state.get("LoadState") == "not-found":
            continue
        todo = []
        if state.get("ActiveState") not in ("inactive", "failed"):
            todo.append("stop")
        if state.get("UnitFileState") in ("enabled", "enabled-runtime"):
            todo.append("disable")
        if todo:
            actions[unit] = todo
    return actions, refused


def describe_state(state):
    if state.get("LoadState") == "not-found":
        return "not installed"
    return "%s, %s" % (state.get("ActiveState", "unknown"), state.get("UnitFileState") or "no unit file state")


def stop_findings(units, before, after, actions, refused, errors, check_mode):
    """SVC-002, one finding per unit the policy lists (subject); none when it lists none."""
    expected = CONTROLS["SVC-002"]
    findings = []
    for unit in units:
        if unit in refused:
            findings.append(finding("SVC-002", FAIL, expected, "%s: %s" % (describe_state(before.get(unit, {})), "not stopped"),
                                    "refused: %s (%s); stop it by hand if that is meant" % (unit, refused[unit]), subject=unit))
            continue
        state_after = before.get(unit, {}) if check_mode else after.get(unit, before.get(unit, {}))
        status = fold(stopped(before.get(unit, {})), stopped(state_after), check_mode,
                      attempted=unit in actions, applied_ok=unit not in errors)
        evidence = "systemctl show" + (": %s" % errors[unit] if unit in errors else "")
        if unit in actions:
            evidence += "; %s %s" % ("would" if check_mode else "ran", " and ".join(actions[unit]))
        findings.append(finding("SVC-002", status, expected, describe_state(state_after),
                                evidence, subject=unit))
    return findings
