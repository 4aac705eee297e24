# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel hardening: parameters (sysctl), modules that cannot be loaded, core dumps.

Pure logic over text: the module reads /proc/sys, /proc/modules and the files, and
passes what it read; this file says what is wanted, renders the files, plans the
changes and turns the states before and after into findings.

* Parameters: a default set (network, kernel, ASLR, setuid dumps), a site dict merged
  over it (a value of None takes a key out of management), persisted in one file
  (``/etc/sysctl.d/60-yoroi.conf``) and applied to the running kernel key by key. A key
  the running kernel does not have is reported (``skipped``), never an error; a key the
  kernel refuses to set (a container shares its host's kernel) is reported with the
  reason (``fail``), not a failed run.
* Modules: ``install <m> /bin/false`` and ``blacklist <m>`` in
  ``/etc/modprobe.d/yoroi.conf``; a module loaded now is reported, never unloaded.
* Core dumps: ``* hard core 0`` (pam_limits), systemd-coredump ``Storage=none`` and
  ``ProcessSizeMax=0``, and ``fs.suid_dumpable = 0``.
"""

from __future__ import annotations

import collections
import errno
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    PASS, SKIPPED, finding, fold)

CONTROLS = collections.OrderedDict([
    ("KRN-001", "network parameters: no ICMP redirects accepted or sent, no source routing, "
                "reverse-path filtering, SYN cookies, martian packets logged"),
    ("KRN-002", "IPv6 router advertisements not accepted (unless the policy accepts them)"),
    ("KRN-003", "kernel pointers, dmesg, ptrace and unprivileged BPF restricted; links, FIFOs "
                "and regular files in sticky directories protected"),
    ("KRN-004", "address space layout randomization is full (kernel.randomize_va_space = 2)"),
    ("KRN-005", "unused filesystem modules cannot be loaded"),
    ("KRN-006", "unused network protocol modules cannot be loaded"),
    ("KRN-007", "USB storage and FireWire modules cannot be loaded (unless the policy allows them)"),
    ("KRN-008", "no core dumps: hard limit 0, systemd-coredump stores none, no dumps of setuid programs"),
])

SYSCTL_FILE = "/etc/sysctl.d/60-yoroi.conf"
MODPROBE_FILE = "/etc/modprobe.d/yoroi.conf"
LIMITS_FILE = "/etc/security/limits.d/yoroi.conf"
COREDUMP_FILE = "/etc/systemd/coredump.conf.d/yoroi.conf"

# (key, value, control): the defaults, in the order the file lists them.
DEFAULT_SYSCTL = (
    ("net.ipv4.conf.all.accept_redirects", "0", "KRN-001"),
    ("net.ipv4.conf.default.accept_redirects", "0", "KRN-001"),
    ("net.ipv4.conf.all.secure_redirects", "0", "KRN-001"),
    ("net.ipv4.conf.default.secure_redirects", "0", "KRN-001"),
    ("net.ipv4.conf.all.send_redirects", "0", "KRN-001"),
    ("net.ipv4.conf.default.send_redirects", "0", "KRN-001"),
    ("net.ipv6.conf.all.accept_redirects", "0", "KRN-001"),
    ("net.ipv6.conf.default.accept_redirects", "0", "KRN-001"),
    ("net.ipv4.conf.all.accept_source_route", "0", "KRN-001"),
    ("net.ipv4.conf.default.accept_source_route", "0", "KRN-001"),
    ("net.ipv6.conf.all.accept_source_route", "0", "KRN-001"),
    ("net.ipv6.conf.default.accept_source_route", "0", "KRN-001"),
    ("net.ipv4.conf.all.rp_filter", "1", "KRN-001"),
    ("net.ipv4.conf.default.rp_filter", "1", "KRN-001"),
    ("net.ipv4.tcp_syncookies", "1", "KRN-001"),
    ("net.ipv4.conf.all.log_martians", "1", "KRN-001"),
    ("net.ipv4.conf.default.log_martians", "1", "KRN-001"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1", "KRN-001"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1", "KRN-001"),
    ("kernel.kptr_restrict", "2", "KRN-003"),
    ("kernel.dmesg_restrict", "1", "KRN-003"),
    ("kernel.yama.ptrace_scope", "1", "KRN-003"),
    ("kernel.unprivileged_bpf_disabled", "1", "KRN-003"),
    ("fs.protected_symlinks", "1", "KRN-003"),
    ("fs.protected_hardlinks", "1", "KRN-003"),
    # 1, not 2: Debian's /usr/lib/sysctl.d/99-protect-links.conf (systemd) sets 1 and is read
    # after 60-yoroi.conf at boot, so 2 here would never last a reboot.
    ("fs.protected_fifos", "1", "KRN-003"),
    ("fs.protected_regular", "2", "KRN-003"),
    ("kernel.randomize_va_space", "2", "KRN-004"),
    ("fs.suid_dumpable", "0", "KRN-008"),
)
# Managed unless the policy accepts router advertisements (a host configured by SLAAC).
IPV6_RA_SYSCTL = (
    ("net.ipv6.conf.all.accept_ra", "0", "KRN-002"),
    ("net.ipv6.conf.default.accept_ra", "0", "KRN-002"),
)

FILESYSTEM_MODULES = ("cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "udf")
PROTOCOL_MODULES = ("dccp", "sctp", "rds", "tipc")
DEFAULT_BLOCKED_MODULES = FILESYSTEM_MODULES + PROTOCOL_MODULES
USB_STORAGE = "usb-storage"
FIREWIRE = "firewire-core"

LIMITS_TEXT = "# Managed by Yoroi (KRN-008): no core dumps. Edits here are overwritten.\n* hard core 0\n"
COREDUMP_TEXT = ("# Managed by Yoroi (KRN-008): systemd-coredump keeps no core dumps.\n"
                 "[Coredump]\nStorage=none\nProcessSizeMax=0\n")

# errnos with which a running kernel refuses a write it will never accept here (a
# read-only /proc/sys in a container, a key only the host's namespace may set).
REFUSALS = (errno.EROFS, errno.EACCES, errno.EPERM)


# --- names and values ----------------------------------------------------------------------------


# A sysctl key: dotted (net.ipv4.tcp_syncookies) or slashed with dots kept in a part
# (net/ipv4/conf/eth0.100/rp_filter); no part "." or "..": the key becomes a path under
# /proc/sys that is read and written as root.
KEY = re.compile(r"^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)+|[a-z0-9_-]+(?:/(?!\.\.?(?:/|$))[a-z0-9_.:-]+)+)$")
# A module name as modprobe.d reads it: one word ("install NAME /bin/false").
MODULE = re.compile(r"^[A-Za-z0-9_-]+$")


def check_inputs(sysctl, modules):
    """Refuse (ValueError) a sysctl key, value or module name that could leave its place:
    a path outside /proc/sys, a second line in a sysctl.d or modprobe.d file."""
    for key, value in (sysctl or {}).items():
        if not KEY.fullmatch(str(key)):
            raise ValueError("sysctl key %r is not a key below /proc/sys" % (key,))
        if value is not None and any(c in str(value) for c in "\n\r\0"):
            raise ValueError("sysctl value of %s holds a line break" % key)
    for name in modules or []:
        if not MODULE.fullmatch(str(name)):
            raise ValueError("module name %r is not one word of letters, digits, - and _" % (name,))


def key_path(key):
    """The path of a key below /proc/sys: ``a.b.c`` -> ``a/b/c``; a key written with
    slashes (``net/ipv4/conf/eth0.100/rp_filter``) keeps its dots, as sysctl reads it."""
    key = key.strip().lstrip("-").strip()
    return key if "/" in key else key.replace(".", "/")


def normalize_value(value):
    """One spelling of a value: booleans as 1/0, runs of whitespace as one space."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return " ".join(str(value).split())


def module_name(name):
    """modprobe treats ``-`` and ``_`` alike; /proc/modules uses ``_``."""
    return name.replace("-", "_")


# --- what is wanted ------------------------------------------------------------------------------


def wanted_sysctl(overrides=None, ipv6_router_advertisements=False):
    """{path: (key, value, control)} in file order: the defaults, the IPv6 router
    advertisement keys unless the policy accepts them, then ``overrides`` merged over
    them ({key: value}; a value of None takes the key out of management). A key the
    site adds belongs to KRN-001 when it is a network key, else to KRN-003."""
    wanted = collections.OrderedDict()
    defaults = DEFAULT_SYSCTL + (() if ipv6_router_advertisements else IPV6_RA_SYSCTL)
    for key, value, control in defaults:
        wanted[key_path(key)] = (key, value, control)
    for key, value in (overrides or {}).items():
        path = key_path(key)
        if value is None:
            wanted.pop(path, None)
            continue
        old = wanted.get(path)
        control = old[2] if old else ("KRN-001" if path.startswith("net/") else "KRN-003")
        wanted[path] = (old[0] if old else key.strip(), normalize_value(value), control)
    return wanted


def wanted_modules(blocked=DEFAULT_BLOCKED_MODULES, block_usb_storage=True, block_firewire=True):
    """(blocked, allowed): {name: control} of the modules to block, and of those the
    policy allows (reported as such). Protocol modules are KRN-006, USB storage and
    FireWire KRN-007, every other name (the filesystems, a site's own) KRN-005."""
    modules = collections.OrderedDict()
    for name in blocked:
        modules.setdefault(name, "KRN-006" if module_name(name) in PROTOCOL_MODULES else "KRN-005")
    allowed = collections.OrderedDict()
    for name, block in ((USB_STORAGE, block_usb_storage), (FIREWIRE, block_firewire)):
        listed = [m for m in modules if module_name(m) == module_name(name)]
        if block or listed:  # a name the site lists itself is blocked whatever the switch
            for other in listed:
                del modules[other]
            modules[(listed or [name])[0]] = "KRN-007"
        else:
            allowed[name] = "KRN-007"
    return modules, allowed


# --- parsers ----------------------------------------------------------------------------------------


def parse_sysctl_conf(text):
    """{path: (key, value)} of a sysctl.d file (later lines win; ``-key`` is a key whose
    failure is ignored). Comments start with # or ;."""
    values = collections.OrderedDict()
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().lstrip("-").strip()
        if key:
            values[key_path(key)] = (key, normalize_value(value))
    return values


def parse_sysctl_a(text):
    """{path: value} of ``sysctl -a`` output (``key = value`` lines), the form in which
    reads of /proc/sys are recorded."""
    return collections.OrderedDict((path, value) for path, (_key, value) in parse_sysctl_conf(text).items())


def parse_proc_modules(text):
    """The names of the loaded modules, or None when there is no /proc/modules (a
    kernel without loadable module support)."""
    if text is None:
        return None
    return frozenset(line.split()[0] for line in text.splitlines() if line.split())


def parse_modprobe(text):
    """{name: set of directives} for ``install NAME /bin/false|/bin/true`` and
    ``blacklist NAME`` lines of modprobe.d text."""
    found = collections.defaultdict(set)
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[0] == "install" and words[2] in ("/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true"):
            found[module_name(words[1])].add("install")
        elif len(words) == 2 and words[0] == "blacklist":
            found[module_name(words[1])].add("blacklist")
    return found


# --- rendering ---------------------------------------------------------------------------------------


def render_sysctl(wanted):
    lines = ["# Managed by Yoroi (KRN-001..KRN-004, KRN-008). Edits here are overwritten;",
             "# set yoroi_kernel_sysctl for the values a site needs different."]
    for control in CONTROLS:
        keys = [(key, value) for key, value, c in wanted.values() if c == control]
        if keys:
            lines.append("# %s" % control)
            lines.extend("%s = %s" % pair for pair in keys)
    return "\n".join(lines) + "\n"


def render_modprobe(modules):
    lines = ["# Managed by Yoroi (KRN-005..KRN-007): these modules cannot be loaded.",
             "# A module loaded before this file existed stays loaded until it is unloaded or the host reboots."]
    for name in modules:
        lines.append("install %s /bin/false" % name)
        lines.append("blacklist %s" % name)
    return "\n".join(lines) + "\n"


# --- planning ----------------------------------------------------------------------------------------


def boot_overrides(wanted, later_files):
    """{path: (file, value)}: wanted keys that a file read after ours at boot sets to
    another value (the last setting of a key wins). ``later_files``: [(path, text)] in
    the order they are read after ``60-yoroi.conf``."""
    last = {}
    for name, text in later_files:
        for path, (_key, value) in parse_sysctl_conf(text).items():
            last[path] = (name, value)
    return dict((path, last[path]) for path, (_k, value, _c) in wanted.items()
                if path in last and last[path][1] != value)


def runtime_changes(wanted, runtime, writable=None):
    """([(path, value)] to write, {path: (errno, reason)} that cannot be written here):
    keys the running kernel has with another value. ``writable``: the paths /proc/sys
    lets this process write (None: all); a key outside it is not tried, so a read-only
    /proc/sys is known in check mode too."""
    changes, blocked = [], {}
    for path, (_key, value, _c) in wanted.items():
        if path in runtime and runtime[path] != value:
            if writable is None or path in writable:
                changes.append((path, value))
            else:
                blocked[path] = (errno.EROFS, "/proc/sys/%s is not writable here" % path)
    return changes, blocked


def container_name(systemd_container, containerenv, dockerenv):
    """The container a host runs in, or None: systemd's /run/systemd/container, else the
    marker files of podman (/run/.containerenv) and docker (/.dockerenv)."""
    if systemd_container and systemd_container.strip():
        return systemd_container.strip()
    if containerenv:
        return "podman"
    if dockerenv:
        return "docker"
    return None


def refused(code):
    """True when a write failed because the kernel will not let it be set here."""
    return code in REFUSALS


class Plan(object):
    """The changes one run makes: {path: new text} of the files, and the runtime keys."""

    def __init__(self, files, runtime, blocked=None):
        self.files = files  # {path: (before, after)} only those that change
        self.runtime = runtime  # [(proc path, value)]
        self.blocked = blocked or {}  # {proc path: (errno, reason)}: drift that cannot be written here

    def __bool__(self):
        return bool(self.files or self.runtime)

    __nonzero__ = __bool__


def plan(wanted, modules, disable_core_dumps, files, runtime, writable=None):
    """The Plan for the state read: ``files`` {path: text or None} of the four files,
    ``runtime`` {path: value} of /proc/sys, ``writable`` as runtime_changes takes it."""
    targets = {SYSCTL_FILE: render_sysctl(wanted), MODPROBE_FILE: render_modprobe(modules)}
    if disable_core_dumps:
        targets[LIMITS_FILE] = LIMITS_TEXT
        targets[COREDUMP_FILE] = COREDUMP_TEXT
    changes = collections.OrderedDict(
        (path, (files.get(path), text)) for path, text in sorted(targets.items()) if files.get(path) != text)
    return Plan(changes, *runtime_changes(wanted, runtime, writable))


# --- findings ----------------------------------------------------------------------------------------


def sysctl_findings(wanted, file_before, file_after, runtime_before, runtime_after, overrides_at_boot,
                    write_errors, check_mode, container=None):
    """One finding per wanted key (subject: the key).

    ``file_before``/``file_after``: parse_sysctl_conf of our file before the run and as
    written (or planned); ``runtime_*``: {path: value} read from /proc/sys (after: read
    back, or the planned values in check mode); ``write_errors``: {path: (errno, text)}
    of the writes that failed or that /proc/sys would not allow (Plan.blocked).

    A running value the kernel will not let this host set fails on a host. In a
    ``container`` it is the host's kernel (or, for net.*, the runtime's ``--sysctl``):
    the key is judged on the file alone until the file is right, then ``skipped``.
    """
    findings = []
    for path, (key, value, control) in wanted.items():
        expected = "%s = %s" % (key, value)
        in_file_before = (file_before.get(path) or (None, None))[1] == value
        in_file_after = (file_after.get(path) or (None, None))[1] == value
        if in_file_before and in_file_after:
            notes = ["persisted in %s" % SYSCTL_FILE]
        elif in_file_after:
            notes = ["%s %s" % ("would be written to" if check_mode else "written to", SYSCTL_FILE)]
        else:
            notes = ["not in %s" % SYSCTL_FILE]
        if path not in runtime_before:
            findings.append(finding(control, SKIPPED, expected, "not in the running kernel",
                                    "%s; the running kernel has no /proc/sys/%s, so there is nothing to apply" % (notes[0], path),
                                    subject=key))
            continue
        now = runtime_after.get(path)
        if runtime_before[path] == now:
            notes.append("running value %s" % now)
        else:
            notes.append(("running value %s (would be set to %s)" if check_mode else "running value %s -> %s")
                         % (runtime_before[path], now))
        code, reason = write_errors.get(path, (None, None))
        if code is not None:
            if refused(code) and container:
                notes.append("the running kernel does not let it be set here (%s): in a container (%s) the "
                             "kernel is the host's; set it there (net.* keys: with the container runtime's "
                             "--sysctl)" % (reason, container))
            elif refused(code):
                notes.append("the running kernel does not let it be set here (%s): set it where the kernel "
                             "is not shared (a container's host) or it applies at the next boot" % reason)
            else:
                notes.append("writing /proc/sys/%s failed: %s" % (path, reason))
        boot = overrides_at_boot.get(path)
        if boot:
            notes.append("%s sets %s at boot, after %s" % (boot[0], boot[1], SYSCTL_FILE))
        ok_before = in_file_before and runtime_before[path] == value and not boot
        ok_after = in_file_after and now == value and not boot
        attempted = in_file_before != in_file_after or runtime_before[path] != value
        if container and code is not None and refused(code) and now != value and not boot:
            # not this host's to set: the file is what this host answers for
            status = fold(in_file_before, in_file_after, check_mode, attempted=in_file_before != in_file_after)
            if status == PASS:
                status = SKIPPED
        else:
            status = fold(ok_before, ok_after, check_mode, attempted=attempted,
                          applied_ok=code is None or refused(code))
        shown = runtime_before[path] if check_mode else now
        findings.append(finding(control, status, expected, "%s = %s" % (key, shown), "; ".join(notes), subject=key))
    return findings


def module_findings(modules, allowed, blocked_before, blocked_after, loaded, check_mode, changed):
    """One finding per module (subject: its name). ``blocked_*``: parse_modprobe of every
    modprobe.d file before, and after (or as planned); ``loaded``: parse_proc_modules."""
    findings = []
    for name, control in allowed.items():
        findings.append(finding(control, SKIPPED, "install %s /bin/false" % name, "allowed by policy",
                                "the policy allows %s; Yoroi does not block it" % name, subject=name))
    for name, control in modules.items():
        expected = "install %s /bin/false; blacklist %s" % (name, name)
        before = blocked_before.get(module_name(name), set()) >= {"install", "blacklist"}
        after = blocked_after.get(module_name(name), set()) >= {"install", "blacklist"}
        is_loaded = loaded is not None and module_name(name) in loaded
        # check mode: what is there now; otherwise what the run left
        actual = "cannot be loaded" if (before if check_mode else after) else "loadable"
        if before and after:
            where = "blocked in %s" % MODPROBE_FILE
        elif after:
            where = "%s in %s" % ("would be blocked" if check_mode else "blocked now", MODPROBE_FILE)
        else:
            where = "not blocked"
        if loaded is None:
            evidence = "%s; the running kernel has no loadable modules (no /proc/modules)" % where
        elif is_loaded:
            actual = "loaded now; " + actual
            evidence = ("%s; %s is loaded (in use) and is not unloaded by force: unload it (modprobe -r %s) "
                        "when nothing uses it, or reboot" % (where, name, name))
        else:
            evidence = "%s; not loaded" % where
        status = fold(before and not is_loaded, after and not is_loaded, check_mode,
                      attempted=changed and before != after)
        findings.append(finding(control, status, expected, actual, evidence, subject=name))
    return findings


def core_dump_findings(disable_core_dumps, files_before, files_after, check_mode):
    """KRN-008 findings of the two core dump files (the sysctl key has its own)."""
    findings = []
    for path, text, expected in ((LIMITS_FILE, LIMITS_TEXT, "* hard core 0"),
                                 (COREDUMP_FILE, COREDUMP_TEXT, "Storage=none, ProcessSizeMax=0")):
        if not disable_core_dumps:
            findings.append(finding("KRN-008", SKIPPED, expected, "not managed",
                                    "core dumps are allowed by policy (yoroi_kernel_disable_core_dumps)", subject=path))
            continue
        before, after = files_before.get(path) == text, files_after.get(path) == text
        status = fold(before, after, check_mode, attempted=before != after)
        now = before if check_mode else after
        findings.append(finding("KRN-008", status, expected, expected if now else "missing or different",
                                "%s %s" % (path, "in place" if now else "differs from the policy"), subject=path))
    return findings
