# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.patching: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/patching.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import glob
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages
from ansible_collections.yoroi.baseline.plugins.module_utils import _patching as pat
from ansible_collections.yoroi.baseline.plugins.module_utils._assets import read_sockets

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
ENV = {"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
LISTS = "/var/lib/apt/lists"
LOCK = ["-o", "DPkg::Lock::Timeout=%d" % _packages.LOCK_TIMEOUT]
# an upgrade keeps the host's own configuration files (never asks, never replaces them)
CONFOLD = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
UNATTENDED_PACKAGE = "unattended-upgrades"


def host(path):
    return ROOT + path


def tool(module, argv):
    """(rc, output) of a host tool; (None, why) when it is not installed. (Tests replace it
    with a fake host.)"""
    return _concern.run_tool(module, argv, ENV)


class Reader(object):
    """One reading of the host's pending updates and patch state."""

    def __init__(self, module):
        self.module = module

    def tool(self, argv):
        return tool(self.module, argv)

    def updates(self):
        """The pending updates as apt's simulation lists them, held packages included
        (``--ignore-hold``: a held package's security update is still pending); apt's lists
        are not refreshed (an audit never runs ``apt-get update``)."""
        rc, out = self.tool(["apt-get", "-s", "-o", "Debug::NoLocking=1", "--ignore-hold", "dist-upgrade"])
        if rc != 0:
            raise OSError("apt-get -s dist-upgrade: %s" % out[-500:])
        return pat.parse_updates(out)

    def release_times(self):
        releases = []
        for path in glob.glob(host(LISTS + "/*Release")):
            try:
                with open(path, errors="replace") as handle:
                    head = handle.read(4096)
                releases.append((pat.parse_release(head), os.stat(path).st_mtime))
            except OSError:
                continue
        return pat.release_times(releases)

    def reboot(self):
        """(required, packages, since)."""
        try:
            since = os.stat(host(pat.REBOOT_REQUIRED)).st_mtime
        except OSError:
            return False, [], None
        return True, pat.parse_lines(_files.read_text(host(pat.REBOOT_REQUIRED + ".pkgs"), "")), since

    def needrestart(self):
        # -b batch (machine-readable), -r l list only: nothing is restarted
        rc, out = self.tool(["needrestart", "-b", "-r", "l"])
        if rc is None:
            return None
        return pat.parse_needrestart(out) if rc == 0 else {"services": [], "kernel": None}

    def unattended(self):
        installed = not _packages.missing(self.module, [UNATTENDED_PACKAGE])
        rc, out = self.tool(["apt-config", "dump"])
        return pat.unattended_state(installed, out if rc == 0 else "")

    def held(self):
        rc, out = self.tool(["apt-mark", "showhold"])
        return pat.parse_lines(out) if rc == 0 else []

    def installed(self, names):
        missing = _packages.missing(self.module, list(names))
        return [name for name in names if name not in missing]


def apt(module, argv, errors):
    """Run a command that changes the host; its failure is added to ``errors``."""
    rc, out = tool(module, argv)
    if rc != 0:
        errors.append("%s: %s" % (" ".join(argv[:3]), out[-500:]))
    return rc == 0


def health(module, params, reader):
    try:
        ports = pat.parse_ports(params["ports"])
        pat.check_units(params["services"])
    except ValueError as exc:
        module.fail_json(msg="refused: %s" % exc, healthy=False, problems=[str(exc)])
    states = {}
    for unit in params["services"]:
        rc, out = reader.tool(["systemctl", "is-active", "--", unit])
        states[unit] = out.splitlines()[-1].strip() if out else ("active" if rc == 0 else "unknown")
    listening = set((proto.rstrip("6"), port) for proto, _address, port, _inode in read_sockets(host("/proc")))
    problems = pat.health(states, ports, listening)
    module.exit_json(changed=False, healthy=not problems, problems=problems,
                     findings=[pat.health_finding(problems, params["services"], ports)])


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            state=dict(type="str", choices=["configure", "upgrade", "health"], default="configure"),
            upgrade=dict(type="str", choices=list(pat.UPGRADE), default="security"),
            max_pending_days=dict(type="int", default=7),
            hold=dict(type="list", elements="str", default=[]),
            unattended=dict(type="str", choices=list(pat.UNATTENDED), default="report"),
            update_lists=dict(type="bool", default=True),
            services=dict(type="list", elements="str", default=[]),
            ports=dict(type="list", elements="str", default=[]),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    reader = Reader(module)
    if params["state"] == "health":
        health(module, params, reader)
    concern = _concern.Concern(module, "patching", pat.CONTROLS, change="OS patching")
    try:
        pat.check_holds(params["hold"])
    except ValueError as exc:
        concern.refuse(str(exc))
    if not 0 <= params["max_pending_days"] <= 3650:
        concern.refuse("max_pending_days must be from 0 to 3650")
    upgrading = params["state"] == "upgrade"
    policy = params["unattended"]
    if policy == "enabled":
        concern.install([UNATTENDED_PACKAGE], params["apt_cache_valid_time"])
    errors = []
    now = time.time()

    # read
    try:
        held_before = reader.held()
        installed_holds = reader.installed(params["hold"])
        unattended_before = reader.unattended()
        auto_text = _files.read_text(host(pat.AUTO_UPGRADES))
        refreshed = False
        if upgrading and params["update_lists"] and not module.check_mode:
            with concern.changing():
                refreshed = apt(module, ["apt-get"] + LOCK + ["-q", "update"], errors)
        updates_before = reader.updates()
        times = reader.release_times()
    except OSError as exc:
        concern.refuse(str(exc))

    # plan
    hold_plan = [name for name in installed_holds if name not in held_before]
    held = set(held_before) | set(hold_plan)
    upgrade_plan = pat.to_upgrade(updates_before, params["upgrade"], held) if upgrading else []
    auto_wanted = None
    if policy == "enabled" and (unattended_before["installed"] or module.check_mode):
        auto_wanted = pat.render_auto_upgrades(True)
    elif policy == "disabled" and unattended_before["enabled"]:
        auto_wanted = pat.render_auto_upgrades(False)
    auto_plan = auto_wanted is not None and auto_wanted != auto_text

    written = {}
    upgraded = []
    with concern.changing(needed=bool(hold_plan or upgrade_plan or auto_plan)):
        if not module.check_mode:
            if hold_plan:
                apt(module, ["apt-mark", "hold", "--"] + hold_plan, errors)
            if auto_plan:
                written[pat.AUTO_UPGRADES] = _files.write_file(module, host(pat.AUTO_UPGRADES), auto_wanted, mode=0o644)[1]
            if upgrade_plan:
                names = [u["name"] for u in upgrade_plan]
                if apt(module, ["apt-get"] + LOCK + ["-q", "-y"] + CONFOLD + ["install", "--only-upgrade", "--"] + names,
                       errors):
                    upgraded = [pat.describe(u) for u in upgrade_plan]
    changed = bool(hold_plan or upgrade_plan or auto_plan)

    # read back (or take the plan, in check mode)
    if module.check_mode or not changed:
        held_after = sorted(held) if module.check_mode else held_before
        planned = set(u["name"] for u in upgrade_plan)
        updates_after = [u for u in updates_before if u["name"] not in planned]
        unattended_after = dict(unattended_before, enabled=policy == "enabled" or (unattended_before["enabled"] and policy != "disabled"),
                                security=unattended_before["security"] or (policy == "enabled" and auto_plan)) \
            if auto_plan else unattended_before
    else:
        try:
            held_after, updates_after, unattended_after = reader.held(), reader.updates(), reader.unattended()
        except OSError as exc:
            concern.fail(str(exc), upgraded=upgraded)
    required, reboot_packages, since = reader.reboot()
    restarts = reader.needrestart()
    applied_ok = not errors

    findings = [
        pat.security_finding(updates_before, updates_after, times, params["max_pending_days"], now, module.check_mode,
                             bool(upgrade_plan), applied_ok, upgraded, held),
        pat.other_finding(updates_after, params["upgrade"], held),
        pat.reboot_finding(required, reboot_packages, since, now),
        pat.restart_finding(restarts),
        pat.unattended_finding(policy, unattended_before, unattended_after, module.check_mode, auto_plan, applied_ok),
        pat.hold_finding(params["hold"], installed_holds, held_before, held_after, module.check_mode, bool(hold_plan),
                         applied_ok),
    ]
    if upgrading:
        # what `yoroi patch` prints per host
        findings[0]["upgraded"] = upgraded
    diff = [_files.file_diff(pat.AUTO_UPGRADES, auto_text or "", auto_wanted)] if auto_plan else []
    result = dict(files=written, upgraded=upgraded, to_upgrade=[pat.describe(u) for u in upgrade_plan],
                  reboot_required=required, lists_refreshed=refreshed,
                  pending=[dict(u, since=pat.pending_since(u, times)) for u in updates_after])
    if errors:
        result["msg"] = "; ".join(errors)
        if upgrading:
            # a failed upgrade fails the host: the rollout stops there
            module.fail_json(changed=changed, findings=findings, **result)
    concern.exit(findings, changed, diff, **result)
