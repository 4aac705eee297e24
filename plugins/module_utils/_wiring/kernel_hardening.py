# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.kernel_hardening: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/kernel_hardening.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

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
