#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_hardening
short_description: Harden kernel parameters, block unused kernel modules, turn core dumps off
version_added: 0.1.0
description:
  - Reads C(/proc/sys), C(/proc/modules), the modprobe.d and sysctl.d files and the core dump
    settings once, and evaluates controls C(KRN-001) to C(KRN-008) in one pass.
  - C(KRN-001) network parameters, C(KRN-002) IPv6 router advertisements, C(KRN-003) kernel
    information and process isolation, C(KRN-004) ASLR, one finding per key (its subject). They
    are persisted in one file, C(/etc/sysctl.d/60-yoroi.conf), and written to C(/proc/sys) key
    by key (what C(sysctl -p) of that file does). A key the running kernel does not have is
    C(skipped) with the reason; a key the running kernel refuses to set is C(fail) with the
    reason, not a failed run. In a container (the kernel is the host's, C(/proc/sys) read-only)
    such a key is judged on the file and is C(skipped) once the file is right. A key that a
    sysctl file read later at boot sets to another value fails, naming that file.
  - C(KRN-005) to C(KRN-007) modules, one finding per module - C(install NAME /bin/false) and
    C(blacklist NAME) in C(/etc/modprobe.d/yoroi.conf). A module loaded now is reported
    (C(fail)), never unloaded.
  - C(KRN-008) core dumps - C(* hard core 0) in C(/etc/security/limits.d/yoroi.conf),
    C(Storage=none) and C(ProcessSizeMax=0) in C(/etc/systemd/coredump.conf.d/yoroi.conf), and
    C(fs.suid_dumpable = 0).
  - Every file is written atomically with a backup of the old one; an unchanged file is not
    rewritten.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only; drift has status C(fail).
  diff_mode:
    support: full
    description: Shows each file, and the running values that change, before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
options:
  sysctl:
    description:
      - "Kernel parameters merged over the defaults, C({key: value}). A value of C(null) takes
        a default key out of management (its file line goes, the running value stays)."
      - Keys in dotted (C(net.ipv4.ip_forward)) or slashed form, as C(sysctl) reads them.
    type: dict
    default: {}
  ipv6_router_advertisements:
    description: Accept IPv6 router advertisements (C(accept_ra) is then not managed, C(KRN-002) skipped).
    type: bool
    default: false
  blocked_modules:
    description: Modules that cannot be loaded (C(KRN-005), and C(KRN-006) for dccp, sctp, rds, tipc).
    type: list
    elements: str
    default: [cramfs, freevxfs, hfs, hfsplus, jffs2, udf, dccp, sctp, rds, tipc]
  block_usb_storage:
    description: Block C(usb-storage) (C(KRN-007)).
    type: bool
    default: true
  block_firewire:
    description: Block C(firewire-core) (C(KRN-007)).
    type: bool
    default: true
  disable_core_dumps:
    description:
      - Write the limits and systemd-coredump files of C(KRN-008). When false they are not
        managed (C(skipped)); C(fs.suid_dumpable) is a key of O(sysctl).
    type: bool
    default: true
notes:
  - Runs as root (C(become)).
  - In a container, C(/proc/sys) is read-only, so no running value changes; each differing
    one is reported with the reason and the value read, and the files are written all the same.
"""

EXAMPLES = r"""
- name: Harden the kernel; this host routes
  yoroi.baseline.kernel_hardening:
    sysctl:
      net.ipv4.ip_forward: 1
      net.ipv4.conf.all.send_redirects: null

- name: Audit only
  yoroi.baseline.kernel_hardening:
  check_mode: true
"""

RETURN = r"""
findings:
  description:
    - One finding per control (and per subject where a control is about one account or
      file) - C(control), C(status) (pass, fail, fixed, error, skipped), C(expected),
      C(actual), C(evidence), C(subject). A refused run has an C(error) finding for every
      control of the module.
  returned: always
  type: list
  elements: dict
files:
  description: The files this run wrote (or would write, in check mode), with their backups.
  returned: always
  type: dict
  sample: {/etc/sysctl.d/60-yoroi.conf: /etc/sysctl.d/60-yoroi.conf.1234.2026-11-28@01:00:00~}
refused_keys:
  description: Keys the running kernel refused to set, with the reason.
  returned: always
  type: dict
  sample: {kernel.dmesg_restrict: Read-only file system}
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _kernel as krn

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
PROC_SYS = "/proc/sys"
PROC_MODULES = "/proc/modules"
# systemd-sysctl's directories, first wins for one file name; /etc/sysctl.conf is read last.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")
MANAGED = (krn.SYSCTL_FILE, krn.MODPROBE_FILE, krn.LIMITS_FILE, krn.COREDUMP_FILE)


def host(path):
    return ROOT + path


def read_runtime(paths):
    """{path: value} of the keys the running kernel has, read from /proc/sys."""
    values = {}
    for path in paths:
        try:
            with open(host(os.path.join(PROC_SYS, path)), "r") as handle:
                values[path] = krn.normalize_value(handle.read())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            continue
    return values


def writable(paths):
    """The keys /proc/sys lets this process write (a container mounts it read-only)."""
    return set(path for path in paths if os.access(host(os.path.join(PROC_SYS, path)), os.W_OK))


def container():
    return krn.container_name(_files.read_text(host("/run/systemd/container")),
                              os.path.exists(host("/run/.containerenv")), os.path.exists(host("/.dockerenv")))


def write_runtime(changes):
    """Write each (path, value) to /proc/sys; {path: (errno, reason)} of those that failed."""
    errors = {}
    for path, value in changes:
        try:
            with open(host(os.path.join(PROC_SYS, path)), "w") as handle:
                handle.write(value + "\n")
        except OSError as exc:
            errors[path] = (exc.errno, exc.strerror or str(exc))
    return errors


def later_sysctl_files():
    """[(path, text)] of the sysctl files read after 60-yoroi.conf at boot."""
    chosen = {}
    for directory in SYSCTL_DIRS:
        for path in sorted(glob.glob(host(os.path.join(directory, "*.conf")))):
            chosen.setdefault(os.path.basename(path), path)
    own = os.path.basename(krn.SYSCTL_FILE)
    later = [chosen[name] for name in sorted(chosen) if name > own]
    seen = set(os.path.realpath(path) for path in later)
    if os.path.realpath(host(SYSCTL_CONF)) not in seen:
        later.append(host(SYSCTL_CONF))
    found = []
    for path in later:
        text = _files.read_text(path)
        if text is not None:
            label = path[len(ROOT):]
            if os.path.islink(path):  # 99-sysctl.conf -> ../sysctl.conf: name the file to edit
                label += " (%s)" % os.path.realpath(path)[len(os.path.realpath(ROOT) if ROOT else ""):]
            found.append((label, text))
    return found


def other_modprobe_text():
    """The modprobe.d text of every file but ours."""
    own = os.path.realpath(host(krn.MODPROBE_FILE))
    texts = []
    for directory in MODPROBE_DIRS:
        for path in sorted(glob.glob(host(os.path.join(directory, "*.conf")))):
            if os.path.realpath(path) != own:
                texts.append(_files.read_text(path, ""))
    return "\n".join(texts)


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            sysctl=dict(type="dict", default={}),
            ipv6_router_advertisements=dict(type="bool", default=False),
            blocked_modules=dict(type="list", elements="str", default=list(krn.DEFAULT_BLOCKED_MODULES)),
            block_usb_storage=dict(type="bool", default=True),
            block_firewire=dict(type="bool", default=True),
            disable_core_dumps=dict(type="bool", default=True),
        ), protected=False),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "kernel_hardening", krn.CONTROLS, change="kernel")

    try:
        krn.check_inputs(params["sysctl"], params["blocked_modules"])
    except ValueError as exc:
        concern.refuse(str(exc))

    # read
    wanted = krn.wanted_sysctl(params["sysctl"], params["ipv6_router_advertisements"])
    modules, allowed = krn.wanted_modules(params["blocked_modules"], params["block_usb_storage"], params["block_firewire"])
    files = dict((path, _files.read_text(host(path))) for path in MANAGED)
    runtime = read_runtime(wanted)
    boot = krn.boot_overrides(wanted, later_sysctl_files())
    other_modprobe = other_modprobe_text()
    loaded = krn.parse_proc_modules(_files.read_text(host(PROC_MODULES)))

    # plan
    plan = krn.plan(wanted, modules, params["disable_core_dumps"], files, runtime, writable(runtime))
    written = {}
    write_errors = dict(plan.blocked)
    with concern.changing(needed=bool(plan)):
        for path, (_before, text) in plan.files.items():
            written[path] = _files.write_file(module, host(path), text, mode=0o644)[1]
        if not module.check_mode:
            write_errors.update(write_runtime(plan.runtime))

    # read back (or take the plan, in check mode)
    after = dict(files)
    after.update((path, text) for path, (_b, text) in plan.files.items())
    if module.check_mode:
        runtime_after = dict(runtime)
        runtime_after.update(plan.runtime)
    else:
        after = dict((path, _files.read_text(host(path))) for path in MANAGED)
        runtime_after = read_runtime(wanted)

    findings = krn.sysctl_findings(
        wanted, krn.parse_sysctl_conf(files[krn.SYSCTL_FILE]), krn.parse_sysctl_conf(after[krn.SYSCTL_FILE]),
        runtime, runtime_after, boot, write_errors, module.check_mode, container())
    findings += krn.module_findings(
        modules, allowed, krn.parse_modprobe(other_modprobe + "\n" + (files[krn.MODPROBE_FILE] or "")),
        krn.parse_modprobe(other_modprobe + "\n" + (after[krn.MODPROBE_FILE] or "")),
        loaded, module.check_mode, krn.MODPROBE_FILE in plan.files)
    findings += krn.core_dump_findings(params["disable_core_dumps"], files, after, module.check_mode)

    diff = [_files.file_diff(path, before, text) for path, (before, text) in plan.files.items()]
    if plan.runtime:
        keys = dict((path, key) for path, (key, _v, _c) in wanted.items())
        diff.append({
            "before_header": PROC_SYS, "after_header": PROC_SYS,
            "before": "".join("%s = %s\n" % (keys[path], runtime[path]) for path, _v in plan.runtime),
            "after": "".join("%s = %s\n" % (keys[path], runtime_after.get(path)) for path, _v in plan.runtime),
        })
    refusals = dict((wanted[path][0], reason) for path, (code, reason) in write_errors.items() if krn.refused(code))
    # A running value the kernel refused is not a change; a file written is.
    changed = bool(plan.files) or any(runtime_after.get(path) != runtime.get(path) for path, _v in plan.runtime)
    if module.check_mode:
        changed = bool(plan)
    concern.exit(findings, changed, diff, files=written, refused_keys=refusals)


if __name__ == "__main__":
    main()
