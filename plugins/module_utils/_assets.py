# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's entry in the fleet asset register, from the texts the module reads once.

Pure parsers over text: os-release, the dpkg status file and dpkg.log, ``apt-get -s
upgrade`` (LC_ALL=C), /proc/net/{tcp,tcp6,udp,udp6}, ``fwupdmgr get-devices --json``.
Accounts and groups come from the kit's parsers (_hostfiles).
"""

from __future__ import annotations

import glob
import json
import os
import re

from ansible_collections.yoroi.baseline.plugins.module_utils import _hostfiles

# Groups whose members can become root or read what root reads.
PRIVILEGED_GROUPS = ("root", "sudo", "admin", "wheel")
# /proc/net/tcp state 0A is LISTEN; an unconnected UDP socket (07, CLOSE) is a listener.
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
# `Inst pkg [old] (new origin [arch])`: origins are comma-separated "Debian-Security:12/stable-security".
INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<old>[^\]]*)\])? \((?P<new>\S+) (?P<origins>[^\[)]*?)(?: \[[^\]]*\])?\)")
DPKG_LOG_INSTALLED = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2}) status installed ")


def parse_os_release(text):
    """{KEY: value} of os-release (quotes removed)."""
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def count_installed(status_text):
    """Packages whose dpkg status is ``install ok installed`` in /var/lib/dpkg/status."""
    count = 0
    for stanza in (status_text or "").split("\n\n"):
        for line in stanza.splitlines():
            if line.startswith("Status:"):
                if line.split(":", 1)[1].split()[-1:] == ["installed"]:
                    count += 1
                break
    return count


def parse_apt_simulation(text):
    """[{name, installed, candidate, origins, security}] from ``apt-get -s upgrade`` (LC_ALL=C).

    An update is a security update when an origin of its candidate is a -security suite
    (the way unattended-upgrades' default origins pattern decides on Debian).
    """
    updates = []
    for line in (text or "").splitlines():
        match = INST.match(line)
        if not match:
            continue
        origins = [o.strip() for o in match.group("origins").split(",") if o.strip()]
        updates.append({
            "name": match.group("name"),
            "installed": match.group("old") or "",
            "candidate": match.group("new"),
            "origins": origins,
            "security": any(_is_security(origin) for origin in origins),
        })
    return updates


def _is_security(origin):
    # "Debian-Security:12/stable-security", "Debian:12.5/bookworm-security"
    suite = origin.rsplit("/", 1)[-1]
    return suite.endswith("-security") or origin.lower().startswith("debian-security:")


def _address(hex_address):
    """The text form of a /proc/net address (little-endian 32-bit words)."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return ".".join(str(b) for b in words)
    groups = ["%x" % int.from_bytes(words[i:i + 2], "big") for i in range(0, 16, 2)]
    if groups[:6] == ["0", "0", "0", "0", "0", "ffff"]:
        return "::ffff:%d.%d.%d.%d" % tuple(words[12:16])
    # compress the longest run of zero groups, as ss and ip print them
    best, start = (0, 0), None
    for i, group in enumerate(groups + ["x"]):
        if group == "0" and start is None:
            start = i
        elif group != "0" and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    if best[1] - best[0] > 1:
        return ":".join(groups[:best[0]]) + "::" + ":".join(groups[best[1]:])
    return ":".join(groups)


def parse_proc_net(text, protocol):
    """[(protocol, address, port, inode)] of the listening sockets in a /proc/net table.

    ``protocol`` is tcp, tcp6, udp or udp6; TCP sockets in LISTEN, UDP sockets not
    connected to a peer (remote port 0).
    """
    wanted = TCP_LISTEN if protocol.startswith("tcp") else UDP_UNCONNECTED
    sockets = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted:
            continue
        local, remote = fields[1], fields[2]
        if protocol.startswith("udp") and not remote.endswith(":0000"):
            continue
        address, port = local.split(":")
        sockets.append((protocol, _address(address), int(port, 16), fields[9]))
    return sockets


def listening_ports(sockets, processes):
    """[{protocol, address, port, processes}] sorted, one per socket address; ``processes``
    is {inode: [process name]} (from /proc/PID/fd links to ``socket:[INODE]``)."""
    merged = {}
    for protocol, address, port, inode in sockets:
        key = (protocol.rstrip("6"), address, port)
        entry = merged.setdefault(key, set())
        entry.update(processes.get(inode, ()))
    return [{"protocol": p, "address": a, "port": port, "processes": sorted(names)}
            for (p, a, port), names in sorted(merged.items(), key=lambda item: (item[0][0], item[0][2], item[0][1]))]


def socket_inode(link):
    """The inode of a /proc/PID/fd link target ``socket:[12345]``, else None."""
    if link.startswith("socket:[") and link.endswith("]"):
        return link[8:-1]
    return None


def socket_owners(proc="/proc"):
    """{socket inode: {(pid, process name)}} from every /proc/PID/fd link (read on the host)."""
    owners = {}
    for fd_dir in glob.glob(os.path.join(proc, "[0-9]*", "fd")):
        pid_dir = os.path.dirname(fd_dir)
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        inodes = set()
        for name in names:
            try:
                inode = socket_inode(os.readlink(os.path.join(fd_dir, name)))
            except OSError:
                continue
            if inode:
                inodes.add(inode)
        if not inodes:
            continue
        try:
            with open(os.path.join(pid_dir, "comm"), errors="replace") as handle:
                comm = handle.read().strip()
        except (IOError, OSError):
            comm = ""
        pid = os.path.basename(pid_dir)
        for inode in inodes:
            owners.setdefault(inode, set()).add((int(pid), comm or pid))
    return owners


def socket_processes(owners):
    """{socket inode: {process name}} of :func:`socket_owners`."""
    return dict((inode, set(name for _pid, name in found)) for inode, found in owners.items())


def read_sockets(proc="/proc"):
    """[(protocol, address, port, inode)] of every listening socket in /proc/net (read on the host)."""
    sockets = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(os.path.join(proc, "net", protocol), errors="replace") as handle:
                text = handle.read()
        except (IOError, OSError):
            continue
        sockets += parse_proc_net(text, protocol)
    return sockets


def human_accounts(passwd_text, login_defs_text):
    """Names of the accounts in login.defs' UID range (UID_MIN..UID_MAX), sorted."""
    low, high = _hostfiles.uid_range(_hostfiles.parse_login_defs(login_defs_text))
    return sorted(a.name for a in _hostfiles.parse_passwd(passwd_text) if low <= a.uid <= high)


def privileged_members(group_text, passwd_text, groups=PRIVILEGED_GROUPS):
    """{group: [member]} for the privileged groups that exist: listed members and the
    accounts whose primary group it is."""
    accounts = _hostfiles.parse_passwd(passwd_text)
    result = {}
    for name, gid, members in _hostfiles.parse_group(group_text):
        if name in groups:
            primary = [a.name for a in accounts if a.gid == gid]
            result[name] = sorted(set(members) | set(primary))
    return result


def last_installed(dpkg_log_text):
    """The newest ``status installed`` line's time in dpkg.log, as YYYY-MM-DDTHH:MM:SS, or None."""
    newest = None
    for line in (dpkg_log_text or "").splitlines():
        match = DPKG_LOG_INSTALLED.match(line)
        if match:
            stamp = "%sT%s" % (match.group("date"), match.group("time"))
            if newest is None or stamp > newest:
                newest = stamp
    return newest


def parse_fwupd_devices(text):
    """[{name, vendor, version, guid}] from ``fwupdmgr get-devices --json``; devices
    without a firmware version are left out."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return []
    devices = []
    for device in data.get("Devices") or []:
        if not device.get("Version"):
            continue
        guids = device.get("Guid") or []
        devices.append({
            "name": device.get("Name", ""),
            "vendor": device.get("Vendor", ""),
            "version": device.get("Version", ""),
            "guid": guids[0] if isinstance(guids, list) and guids else str(guids or ""),
        })
    return sorted(devices, key=lambda d: (d["name"], d["version"]))


def virtualization(detect_output, container_file_text):
    """What systemd-detect-virt printed, else the contents of /run/systemd/container, else none."""
    value = (detect_output or "").strip()
    if value:
        return value
    value = (container_file_text or "").strip()
    return value or "none"


def build(os_release, kernel, virt, installed, updates, firmware, ports, humans, privileged, last_patch):
    """The register entry of one host."""
    security = sorted(u["name"] for u in updates if u["security"])
    return {
        "kind": "host",
        "os": os_release.get("NAME", ""),
        "os_id": os_release.get("ID", ""),
        "release": os_release.get("VERSION_ID", ""),
        "codename": os_release.get("VERSION_CODENAME", ""),
        "kernel": kernel,
        "virtualization": virt,
        "packages_installed": installed,
        "updates_pending": len(updates),
        "security_updates_pending": len(security),
        "security_updates": security,
        "firmware": firmware,
        "listening": ports,
        "human_accounts": humans,
        "privileged": privileged,
        "last_patch": last_patch,
    }
