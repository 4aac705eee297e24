# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firmware through fwupd: devices, the updates their allowed remotes offer, fresh
metadata, and the reboots an update leaves pending.

Pure logic over fwupdmgr's JSON (``get-devices --json``, ``get-updates --json``,
``get-remotes --json``, recorded with fwupd 2.0.20 on Debian 12 and 13) and over the
text of fwupd's systemd unit; the module runs the commands and passes what they printed.

* FWU-001, one finding per updatable device: the newest release that an allowed remote
  offers (fwupd's own ``get-updates``: only upgrades, after its blocked and approved
  lists) is installed; a device with such an offer fails, naming device, current ->
  available version and remote. Excluded devices (device id or GUID) are ``skipped``
  with what is offered. Releases from other remotes are named in the evidence, never
  counted nor installed.
* FWU-002, one finding per allowed remote: a ``download`` remote's metadata is younger
  than the maximum age; ``local`` and ``directory`` remotes are read from disk by fwupd
  and always current. An allowed remote that fwupd does not have, or has disabled, fails.
* FWU-003: no device waits for a reboot or an activation to finish an update (device
  flags ``needs-reboot``, ``needs-shutdown``, ``needs-activation``, or an update state of
  pending or needs-reboot); the devices that do are named.
* A host where fwupd cannot run (a container, whose fwupd.service refuses it by
  ``ConditionVirtualization=!container``) or that has no updatable device (most VMs) is
  ``skipped`` with the reason: there is no firmware to keep current, which is neither a
  pass nor a failure.
"""

from __future__ import annotations

import collections
import json
import time

from ansible_collections.yoroi.baseline.plugins.module_utils import _versions
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, PASS, SKIPPED, finding, fold

CONTROLS = collections.OrderedDict([
    ("FWU-001", "every updatable device runs the newest firmware offered by an allowed remote"),
    ("FWU-002", "the metadata of every allowed remote is fresh"),
    ("FWU-003", "no applied firmware update waits for a reboot or an activation"),
])

POLICIES = ("report", "apply")
UNIT = "fwupd.service"
LOCAL_REMOTE = "yoroi-local"
LOCAL_REMOTE_FILE = "/etc/fwupd/remotes.d/%s.conf" % LOCAL_REMOTE
# fwupd's error codes (FwupdError) that mean "nothing there", not a failure
NOT_FOUND, NOTHING_TO_DO = 8, 9
# FwupdUpdateState as the JSON gives it (a number), and its names
UPDATE_STATES = {0: "unknown", 1: "pending", 2: "success", 3: "failed", 4: "needs-reboot", 5: "failed-transient"}
WAITING_STATES = ("pending", "needs-reboot")
WAITING_FLAGS = ("needs-reboot", "needs-shutdown", "needs-activation")
# remotes fwupd reads from disk: their metadata is as fresh as the files
LOCAL_KINDS = ("local", "directory")
DAY = 86400

Device = collections.namedtuple("Device", "id name version guids flags plugin state")
Release = collections.namedtuple("Release", "version remote flags")
Remote = collections.namedtuple("Remote", "id kind enabled mtime source")


class FwupdError(Exception):
    """fwupdmgr answered with an error (its JSON ``Error``, or no JSON at all)."""

    def __init__(self, message, code=None):
        Exception.__init__(self, message)
        self.code = code


def load(text):
    """The JSON document fwupdmgr printed; FwupdError for its ``Error`` object or for
    anything that is not JSON."""
    try:
        doc = json.loads(text or "")
    except ValueError:
        raise FwupdError("fwupdmgr printed no JSON: %s" % (text or "").strip()[:300])
    if not isinstance(doc, dict):
        raise FwupdError("fwupdmgr printed JSON that is not an object")
    error = doc.get("Error")
    if isinstance(error, dict):
        raise FwupdError(str(error.get("Message") or "fwupd error"), error.get("Code"))
    return doc


def _strings(value):
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value not in (None, "") else []


def _state(value):
    if isinstance(value, int):
        return UPDATE_STATES.get(value, str(value))
    return str(value or "unknown")


def parse_devices(text):
    """[Device] of ``get-devices --json``, in fwupd's order."""
    devices = []
    for item in load(text).get("Devices") or []:
        if not isinstance(item, dict) or not item.get("DeviceId"):
            continue
        devices.append(Device(
            id=str(item["DeviceId"]),
            name=str(item.get("Name") or item["DeviceId"]),
            version=str(item.get("Version") or ""),
            guids=tuple(_strings(item.get("Guid"))),
            flags=tuple(_strings(item.get("Flags"))),
            plugin=str(item.get("Plugin") or ""),
            state=_state(item.get("UpdateState")),
        ))
    return devices


def parse_updates(text):
    """{device id: [Release]} of ``get-updates --json``; no update (fwupd's "nothing to
    do" or "no updatable devices") is {}."""
    try:
        doc = load(text)
    except FwupdError as exc:
        if exc.code in (NOT_FOUND, NOTHING_TO_DO):
            return {}
        raise
    updates = {}
    for item in doc.get("Devices") or []:
        if not isinstance(item, dict) or not item.get("DeviceId"):
            continue
        updates[str(item["DeviceId"])] = [
            Release(str(r.get("Version") or ""), str(r.get("RemoteId") or ""), tuple(_strings(r.get("Flags"))))
            for r in item.get("Releases") or [] if isinstance(r, dict)]
    return updates


def parse_remotes(text):
    """{remote id: Remote} of ``get-remotes --json``; ``mtime`` is None when the metadata
    was never downloaded (fwupd says -1)."""
    remotes = collections.OrderedDict()
    for item in load(text).get("Remotes") or []:
        if not isinstance(item, dict) or not item.get("Id"):
            continue
        mtime = item.get("Mtime")
        remotes[str(item["Id"])] = Remote(
            id=str(item["Id"]), kind=str(item.get("Kind") or ""), enabled=bool(item.get("Enabled")),
            mtime=mtime if isinstance(mtime, int) and mtime > 0 else None,
            source=str(item.get("FilenameSource") or ""))
    return remotes


def refuses_containers(unit_text):
    """True when the unit (``systemctl cat`` of it: the unit and its drop-ins, in order)
    ends with a ``ConditionVirtualization=`` that keeps it out of containers. An empty
    assignment resets the list, as systemd reads it."""
    conditions = []
    for line in (unit_text or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "ConditionVirtualization":
            value = value.strip()
            conditions = [] if not value else conditions + [value]
    return any(value.lstrip("|") in ("!container", "no", "false", "!yes") for value in conditions)


def render_local_remote(directory):
    """The remote of a local directory of .cab files (offline sites); ``directory`` empty:
    the same remote, disabled (the file is ours, so it is turned off, not left behind)."""
    lines = [
        "# Managed by Yoroi (FWU-001): firmware from a local directory of .cab files.",
        "[fwupd Remote]",
        "Enabled=%s" % ("true" if directory else "false"),
        "Title=Local firmware directory (Yoroi)",
        "MetadataURI=file://%s" % (directory or "/nonexistent"),
        "ApprovalRequired=false",
    ]
    return "\n".join(lines) + "\n"


def allowed_remotes(remotes, local_dir):
    """The allowed remote ids: the site's, and the local directory's when one is set."""
    allowed = [r for r in remotes if r]
    if local_dir and LOCAL_REMOTE not in allowed:
        allowed.append(LOCAL_REMOTE)
    return allowed


def excluded(device, exclude):
    wanted = set(e.lower() for e in exclude)
    return device.id.lower() in wanted or any(g.lower() in wanted for g in device.guids)


def newest(releases):
    """The newest of ``releases``: by version where they can be ordered, else fwupd's own
    order (newest first)."""
    best = None
    for release in releases:
        if best is None or _versions.compare(release.version, best.version) == _versions.GREATER:
            best = release
    return best


def updatable(devices):
    return [d for d in devices if "updatable" in d.flags or "updatable-hidden" in d.flags]


def offers(device, updates, allowed):
    """(the newest release an allowed remote offers, or None; [the others' releases])."""
    releases = updates.get(device.id, [])
    return (newest([r for r in releases if r.remote in allowed]),
            [r for r in releases if r.remote not in allowed])


def plan(devices, updates, allowed, exclude, policy):
    """[(Device, Release)]: what an apply installs - the newest allowed offer of each
    updatable device not excluded, when the policy is ``apply``."""
    if policy != "apply":
        return []
    todo = []
    for device in updatable(devices):
        release = offers(device, updates, allowed)[0]
        if release is not None and not excluded(device, exclude):
            todo.append((device, release))
    return todo


def subject(device):
    return "%s (%s)" % (device.name, device.id[:12])


def _others(others):
    return "; not allowed: %s" % ", ".join("%s from %s" % (r.version, r.remote) for r in others) if others else ""


def device_findings(before, after, allowed, exclude, check_mode, attempted, errors):
    """FWU-001, one finding per updatable device. ``before``/``after``: (devices,
    updates) read first and read back (the same in check mode). ``attempted``: {device
    id} an update was run for; ``errors``: {device id: fwupdmgr's message}."""
    devices_before, updates_before = before
    devices_after, updates_after = after
    now = dict((d.id, d) for d in devices_after)
    found = []
    for device in updatable(devices_before):
        release, others = offers(device, updates_before, allowed)
        current = now.get(device.id, device)
        release_after, others_after = offers(current, updates_after, allowed)
        expected = "the newest firmware an allowed remote (%s) offers" % (", ".join(allowed) or "none allowed")
        if excluded(device, exclude):
            if release:
                actual = "excluded by policy; %s -> %s offered by %s" % (device.version, release.version, release.remote)
            else:
                actual = "excluded by policy; %s, no update offered" % device.version
            found.append(finding("FWU-001", SKIPPED, expected, actual, "device %s" % device.id, subject(device)))
            continue
        if release_after is None:
            actual = "%s, no newer firmware offered" % current.version
        else:
            actual = "%s -> %s available from %s" % (current.version, release_after.version, release_after.remote)
        evidence = "device %s, plugin %s" % (device.id, device.plugin)
        if device.id in attempted and release is not None:
            evidence += "; updated %s -> %s from %s" % (device.version, release.version, release.remote)
        if device.id in errors:
            evidence += "; fwupdmgr: %s" % errors[device.id]
        evidence += _others(others_after)
        status = fold(release is None, release_after is None, check_mode, attempted=device.id in attempted,
                      applied_ok=device.id not in errors)
        found.append(finding("FWU-001", status, expected, actual, evidence, subject(device)))
    return found


def metadata_findings(remotes, allowed, max_age_days, now=None, refreshed=None):
    """FWU-002, one finding per allowed remote. ``refreshed``: (attempted, error or
    None) of this run's ``fwupdmgr refresh``."""
    now = time.time() if now is None else now
    found = []
    expected = "metadata younger than %d days" % max_age_days
    note = ""
    if refreshed and refreshed[0]:
        note = "; refreshed in this run" + (": %s" % refreshed[1] if refreshed[1] else "")
    for remote_id in allowed:
        remote = remotes.get(remote_id)
        if remote is None:
            found.append(finding("FWU-002", FAIL, expected, "remote %s is not configured in fwupd" % remote_id,
                                 "fwupdmgr get-remotes", remote_id))
        elif not remote.enabled:
            found.append(finding("FWU-002", FAIL, expected, "remote %s is disabled" % remote_id, remote.source, remote_id))
        elif remote.kind in LOCAL_KINDS:
            found.append(finding("FWU-002", PASS, expected, "%s remote, read from disk by fwupd" % remote.kind,
                                 remote.source, remote_id))
        elif remote.mtime is None:
            found.append(finding("FWU-002", FAIL, expected, "metadata never downloaded", remote.source + note, remote_id))
        else:
            age = (now - remote.mtime) / float(DAY)
            status = PASS if age <= max_age_days else FAIL
            found.append(finding("FWU-002", status, expected, "metadata %.1f days old" % age,
                                 "%s; downloaded %s%s" % (remote.source, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(remote.mtime)), note),
                                 remote_id))
    if not allowed:
        found.append(finding("FWU-002", FAIL, expected, "no remote allowed", "yoroi_firmware_remotes is empty"))
    return found


def stale_downloads(remotes, allowed, max_age_days, now=None):
    """The allowed download remotes whose metadata an apply refreshes."""
    now = time.time() if now is None else now
    return [r.id for r in (remotes.get(i) for i in allowed)
            if r is not None and r.enabled and r.kind not in LOCAL_KINDS
            and (r.mtime is None or now - r.mtime > max_age_days * DAY)]


def waiting(devices):
    """[(Device, why)] of the devices whose update waits for a reboot or an activation."""
    found = []
    for device in devices:
        why = [flag for flag in device.flags if flag in WAITING_FLAGS]
        if device.state in WAITING_STATES:
            why.append("update %s" % device.state)
        if why:
            found.append((device, why))
    return found


def reboot_findings(devices):
    """FWU-003: one failure per device that waits, else one pass."""
    expected = "no firmware update waits for a reboot or an activation"
    pending = waiting(devices)
    if not pending:
        return [finding("FWU-003", PASS, expected, "none waits", "%d devices read" % len(devices))]
    return [finding("FWU-003", FAIL, expected, "%s %s: %s" % (device.name, device.version, ", ".join(why)),
                    "device %s; reboot the host (or fwupdmgr activate) inside the maintenance window" % device.id,
                    subject(device))
            for device, why in pending]


def reboot_required(devices):
    return any("needs-reboot" in why or "needs-shutdown" in why or "update needs-reboot" in why or "update pending" in why
               for _device, why in waiting(devices))


def skipped_findings(reason, evidence=""):
    """Every control ``skipped``: a host with no firmware fwupd can update."""
    return [finding(control, SKIPPED, expected, reason, evidence) for control, expected in CONTROLS.items()]


def missing_findings(reason, evidence=""):
    """fwupd missing: FWU-001 and FWU-002 fail (nothing is known), FWU-003 is skipped."""
    return [finding("FWU-001", FAIL, CONTROLS["FWU-001"], reason, evidence),
            finding("FWU-002", FAIL, CONTROLS["FWU-002"], reason, evidence),
            finding("FWU-003", SKIPPED, CONTROLS["FWU-003"], reason, evidence)]
