# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.firmware: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/firmware.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _firmware as fwu
from ansible_collections.yoroi.baseline.plugins.module_utils._kernel import container_name

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
# C.UTF-8: in plain C fwupd writes a device name's non-ASCII letters as "?" ("Integrated Webcam?")
ENV = {"LC_ALL": "C.UTF-8"}
# what fwupdmgr must never do on its own here: prompt, upload reports, enable remotes
QUIET = ["--no-unreported-check", "--no-metadata-check", "--no-remote-check", "--no-reboot-check"]
# the shapes of the options that reach a command line or the remote file (the input
# rules check the same on the controller)
REMOTE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEVICE = re.compile(r"^([0-9a-fA-F]{40}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
LOCAL_DIR = re.compile(r"^(/(?!\.\.?(/|$))[A-Za-z0-9._+,:~-]+)+$")


def host(path):
    return ROOT + path


def fwupdmgr(module, args):
    """(rc, stdout, stderr) of ``fwupdmgr ARGS``."""
    return module.run_command([module.get_bin_path("fwupdmgr", required=True)] + list(args), environ_update=ENV)


def read_json(module, command, parse):
    """``parse`` of ``fwupdmgr COMMAND --json``; raises fwu.FwupdError."""
    _rc, out, err = fwupdmgr(module, [command, "--json"] + (QUIET if command == "get-updates" else []))
    try:
        return parse(out)
    except fwu.FwupdError as exc:
        if not out.strip() and err.strip():
            raise fwu.FwupdError("fwupdmgr %s: %s" % (command, err.strip()[:300]), exc.code)
        raise


def read(module):
    """(remotes, devices, updates) as fwupd knows them now."""
    return (read_json(module, "get-remotes", fwu.parse_remotes), read_json(module, "get-devices", fwu.parse_devices),
            read_json(module, "get-updates", fwu.parse_updates))


def refuses_here(module):
    """Why fwupd cannot run on this host, or None: in a container, Debian's unit keeps it
    out (``ConditionVirtualization=!container``), and asking would wait 25 s for D-Bus."""
    where = container_name(_files.read_text(host("/run/systemd/container")),
                           os.path.exists(host("/run/.containerenv")), os.path.exists(host("/.dockerenv")))
    if not where:
        return None
    systemctl = module.get_bin_path("systemctl")
    unit = module.run_command([systemctl, "cat", fwu.UNIT], environ_update=ENV)[1] if systemctl else ""
    if fwu.refuses_containers(unit):
        return "fwupd does not run in a container (%s: ConditionVirtualization=!container)" % where
    return None


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            policy=dict(type="str", choices=list(fwu.POLICIES), default="report"),
            remotes=dict(type="list", elements="str", default=["lvfs"]),
            local_dir=dict(type="str", default=""),
            exclude=dict(type="list", elements="str", default=[]),
            max_metadata_age_days=dict(type="int", default=30),
            refresh=dict(type="bool", default=True),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "firmware", fwu.CONTROLS, change="firmware")
    bad = ([r for r in params["remotes"] if not REMOTE_ID.match(r or "")]
           + [d for d in params["exclude"] if not DEVICE.match(d or "")])
    if bad:
        concern.refuse("not a remote id or a device id/GUID: %s" % ", ".join(repr(b) for b in bad))
    if params["local_dir"] and not LOCAL_DIR.match(params["local_dir"]):
        concern.refuse("local_dir %r is not an absolute, normalized path" % params["local_dir"])
    if not 1 <= params["max_metadata_age_days"] <= 3650:
        concern.refuse("max_metadata_age_days must be from 1 to 3650")
    allowed = fwu.allowed_remotes(params["remotes"], params["local_dir"])

    # fwupd itself (without what it only recommends: udisks2, ModemManager, ...)
    concern.install(params["packages"], params["apt_cache_valid_time"], recommends=False)
    if not module.get_bin_path("fwupdmgr"):
        why = "fwupd is not installed" + (" (an apply installs it)" if "fwupd" in params["packages"] else "")
        concern.exit(fwu.missing_findings(why, "fwupdmgr not found"), False)
    refused = refuses_here(module)
    if refused:
        concern.exit(fwu.skipped_findings("no firmware to update here: " + refused), False)

    # the local directory's remote: written when one is set, turned off (not removed) after
    old = _files.read_text(host(fwu.LOCAL_REMOTE_FILE))
    wanted = fwu.render_local_remote(params["local_dir"]) if params["local_dir"] or old is not None else None
    remote_change = wanted is not None and wanted != old
    written = {}
    with concern.changing(needed=remote_change):
        if remote_change:
            written[fwu.LOCAL_REMOTE_FILE] = _files.write_file(module, host(fwu.LOCAL_REMOTE_FILE), wanted, mode=0o644)[1]

    refreshed = (False, None)
    try:
        remotes, devices, updates = read(module)
        # an apply refreshes the allowed download remotes' stale metadata first (it can
        # reach the network: never in an audit); a failure is FWU-002's evidence
        stale = fwu.stale_downloads(remotes, allowed, params["max_metadata_age_days"])
        if stale and params["refresh"] and not module.check_mode:
            rc, out, err = fwupdmgr(module, ["refresh", "--json"])
            error = None
            if rc not in (0, 2):
                try:
                    fwu.load(out)
                    error = (err or out).strip()[:300]
                except fwu.FwupdError as exc:
                    error = str(exc)
            refreshed = (True, error)
            remotes, devices, updates = read(module)
    except fwu.FwupdError as exc:
        concern.exit(concern.error_findings("fwupd did not answer: %s" % exc), remote_change)

    todo = fwu.plan(devices, updates, allowed, params["exclude"], params["policy"])
    attempted, errors, installed = set(), {}, []
    with concern.changing(needed=bool(todo)):
        if not module.check_mode:
            for device, release in todo:
                attempted.add(device.id)
                rc, out, err = fwupdmgr(module, ["install", device.id, release.version, "--assume-yes"] + QUIET)
                if rc != 0:
                    errors[device.id] = ((err or "") + (out or "")).strip()[-300:] or "exit %d" % rc
                installed.append({"device": device.name, "id": device.id, "before": device.version,
                                  "to": release.version, "remote": release.remote, "rc": rc})
    after_devices, after_updates = devices, updates
    if attempted:
        try:
            _remotes, after_devices, after_updates = read(module)
        except fwu.FwupdError as exc:
            concern.fail("fwupd did not answer after the update: %s" % exc, installed=installed)

    if not fwu.updatable(devices):
        findings = [f for f in fwu.skipped_findings("no updatable device", "%d devices read" % len(devices))
                    if f["control"] != "FWU-003"]
    else:
        findings = fwu.device_findings((devices, updates), (after_devices, after_updates), allowed, params["exclude"],
                                       module.check_mode, attempted, errors)
        findings += fwu.metadata_findings(remotes, allowed, params["max_metadata_age_days"], refreshed=refreshed)
    findings += fwu.reboot_findings(after_devices)
    versions = [{"device": d.name, "id": d.id, "version": d.version, "updatable": d in fwu.updatable(after_devices)}
                for d in after_devices if d.version]
    diff = [_files.file_diff(fwu.LOCAL_REMOTE_FILE, old or "", wanted)] if remote_change else []
    concern.exit(findings, bool(todo or remote_change), diff, files=written, installed=installed, devices=versions,
                 pending=[{"device": d.name, "id": d.id, "to": r.version, "remote": r.remote} for d, r in todo],
                 reboot_required=fwu.reboot_required(after_devices))
