# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit rules: what auditd must record, as one rules.d file, and how to judge it.

Pure logic over text: the module reads the rules.d files, the compiled rules
(``augenrules --check``), the syslog plugin's configuration, the SUID/SGID programs it
found on the host and, where the kernel answers, the loaded rules (``auditctl -l``); this
file renders ``/etc/audit/rules.d/50-yoroi.rules``, parses rule files and plugin files,
and turns the states before and after into findings.

* The rules file is rendered deterministically: fixed groups in a fixed order, then the
  privileged programs sorted by path, so an unchanged host renders the same bytes.
* Syscall rules come once per ABI the host runs (``b64`` and ``b32`` on a 64-bit host),
  since a 32-bit program on a 64-bit kernel calls through the b32 table.
* A group passes when each of its lines is active in some rules.d file (whitespace aside)
  and the compiled ``/etc/audit/audit.rules`` is up to date; where the kernel's audit
  subsystem answers, its key must also be among the loaded rules.
"""

from __future__ import annotations

import collections
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    FAIL, FIXED, PASS, SKIPPED, finding, fold)

CONTROLS = collections.OrderedDict([
    ("AUD-001", "auditd installed, enabled and running"),
    ("AUD-002", "audit rules for identity files, sudoers, authentication logs and login records, "
                "time changes and kernel module loading"),
    ("AUD-003", "every SUID/SGID program on the host is audited when run by a user"),
    ("AUD-004", "audit rules are immutable until the next boot (-e 2), by policy"),
    ("AUD-005", "auditd's records are forwarded to syslog (syslog plugin active)"),
])

RULES_DIR = "/etc/audit/rules.d"
RULES_FILE = "/etc/audit/rules.d/50-yoroi.rules"
COMPILED_FILE = "/etc/audit/audit.rules"
SYSLOG_PLUGIN = "/etc/audit/plugins.d/syslog.conf"

ARCHES_64 = ("b64", "b32")
SYSTEM_TREES_SKIPPED = ("/proc", "/sys", "/dev", "/run")

# AUD-002 groups: (subject, key, [watched paths], [(syscalls, extra fields)]).
# CIS Debian 12 6.2.3.x: identity (8), scope (1), logins and session (11, 12),
# time-change (4), kernel_modules (19); auth.log as the authentication log.
WATCH = "-w %s -p wa -k %s"
GROUPS = (
    ("identity files", "identity",
     ["/etc/group", "/etc/gshadow", "/etc/passwd", "/etc/security/opasswd", "/etc/shadow"], []),
    ("sudoers", "scope", ["/etc/sudoers", "/etc/sudoers.d"], []),
    ("authentication logs", "auth_log", ["/var/log/auth.log"], []),
    ("login records", "logins",
     ["/var/log/btmp", "/var/log/faillog", "/var/log/lastlog", "/var/log/wtmp", "/var/run/faillock",
      "/var/run/utmp"], []),
    ("time changes", "time-change", ["/etc/localtime"],
     [("adjtimex,settimeofday", ""), ("clock_settime", " -F a0=0x0")]),
    ("kernel module loading", "kernel_modules", [],
     [("init_module,finit_module,delete_module", " -F auid>={uid_min} -F auid!=unset")]),
)
KMOD = "/usr/bin/kmod"
PRIVILEGED_KEY = "privileged"
PRIVILEGED = "-a always,exit -F path=%s -F perm=x -F auid>=%d -F auid!=unset -k " + PRIVILEGED_KEY
IMMUTABLE = "-e 2"

Plan = collections.namedtuple("Plan", "content write")


def arches(machine):
    """The syscall ABIs of a host by ``uname -m``: a 64-bit kernel also runs 32-bit programs."""
    if machine in ("x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "riscv64", "mips64", "loongarch64"):
        return ARCHES_64
    return ("b32",)


def group_lines(group, arch_list, uid_min, kmod=KMOD):
    """The rule lines of one AUD-002 group."""
    _subject, key, watches, syscalls = group
    lines = [WATCH % (path, key) for path in watches]
    for calls, fields in syscalls:
        fields = fields.format(uid_min=uid_min)
        for arch in arch_list:
            lines.append("-a always,exit -F arch=%s -S %s%s -k %s" % (arch, calls, fields, key))
    if key == "kernel_modules":
        lines.append("-a always,exit -F path=%s -F perm=x -F auid>=%d -F auid!=unset -k %s" % (kmod, uid_min, key))
    return lines


# A path that can stand in a rule line: auditctl splits on whitespace, and a newline
# would start a rule of its own (a user may name a SUID file of theirs "x\n-D").
RULE_PATH = re.compile(r"^/[A-Za-z0-9._+@%=,:~/-]*$")
# More SUID/SGID files than this are not written as rules (users can make thousands).
MAX_PROGRAMS = 2000


def split_programs(programs):
    """(paths that can stand in a rule, paths refused) - sorted; the refused ones are
    reported, never written."""
    usable, refused = [], []
    for path in sorted(set(programs)):
        (usable if RULE_PATH.match(path) and "/../" not in path + "/" else refused).append(path)
    if len(usable) > MAX_PROGRAMS:
        refused.extend(usable[MAX_PROGRAMS:])
        usable = usable[:MAX_PROGRAMS]
    return usable, refused


def privileged_lines(programs, uid_min):
    return [PRIVILEGED % (path, uid_min) for path in split_programs(programs)[0]]


def extra_lines(watches):
    """Site watches ({path: key}), sorted by path."""
    return [WATCH % (path, watches[path]) for path in sorted(watches)]


def render(arch_list, uid_min, programs, immutable, watches=None):
    """The text of RULES_FILE."""
    out = ["# Managed by Yoroi (AUD-002..AUD-004); rewritten on every apply.",
           "# Compiled into %s by augenrules." % COMPILED_FILE]
    for group in GROUPS:
        out.append("")
        out.append("# AUD-002 %s" % group[0])
        out.extend(group_lines(group, arch_list, uid_min))
    if watches:
        out.append("")
        out.append("# site watches")
        out.extend(extra_lines(watches))
    out.append("")
    out.append("# AUD-003 privileged programs (SUID/SGID found on this host)")
    out.extend(privileged_lines(programs, uid_min))
    if immutable:
        out.append("")
        out.append("# AUD-004 immutable until the next boot: must stay the last rule")
        out.append(IMMUTABLE)
    for line in out:
        if "\n" in line or "\r" in line:
            raise ValueError("refused to render an audit rule holding a line break: %r" % line)
    return "\n".join(out) + "\n"


def normalize(line):
    return " ".join(line.split())


def parse_rules(text):
    """The active rule lines of one rules file, whitespace-normalized, in order."""
    lines = []
    for line in (text or "").splitlines():
        line = normalize(line)
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def natural_key(name):
    """``ls -v`` order, which augenrules reads rules.d in."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def merge_rules(files):
    """{file name: text} of rules.d -> (set of active lines, the last ``-e`` line or None),
    the files taken in augenrules' order."""
    active, enabled = set(), None
    for name in sorted(files, key=natural_key):
        if not name.endswith(".rules"):
            continue
        for line in parse_rules(files[name]):
            if line.startswith("-e "):
                enabled = line
            else:
                active.add(line)
    return active, enabled


def parse_plugin(text):
    """{key: value} of an auditd plugin file (``key = value``)."""
    values = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def render_plugin(text, active):
    """The plugin file with ``active`` set; every other line kept. None when there is no file."""
    if text is None:
        return None
    wanted = "yes" if active else "no"
    lines, seen = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#") and "=" in stripped and stripped.split("=", 1)[0].strip() == "active":
            if not seen:
                lines.append("active = %s" % wanted)
            seen = True
            continue
        lines.append(line)
    if not seen:
        lines.insert(0, "active = %s" % wanted)
    return "\n".join(lines) + "\n"


def compiled_current(check_output):
    """Whether ``augenrules --check`` said the compiled rules match rules.d."""
    return "No change" in (check_output or "")


def loaded_keys(auditctl_l):
    """The keys of the loaded rules (``auditctl -l``); None when the kernel did not answer."""
    if auditctl_l is None:
        return None
    keys = set()
    for line in auditctl_l.splitlines():
        for match in re.finditer(r"(?:-k |-F key=)(\S+)", line):
            keys.add(match.group(1))
    return keys


def plan(current, wanted):
    return Plan(wanted, current != wanted)


class State(object):
    """What one reading of the host says: rules.d, compiled rules, loaded keys, plugin."""

    def __init__(self, files, check_output, loaded, plugin_text, enabled_state):
        self.active, self.enabled_line = merge_rules(files)
        self.compiled = compiled_current(check_output)
        self.check_output = (check_output or "").strip()
        self.loaded = loaded_keys(loaded)
        self.plugin = parse_plugin(plugin_text) if plugin_text is not None else None
        self.enabled_state = enabled_state

    def missing(self, lines):
        return [line for line in lines if normalize(line) not in self.active]

    def ok(self, lines, key):
        return not self.missing(lines) and self.compiled and (self.loaded is None or not lines or key in self.loaded)


def _rules_evidence(state, missing, key, load_error):
    parts = []
    if missing:
        parts.append("missing in %s: %s" % (RULES_DIR, "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")))
    if not state.compiled:
        parts.append("augenrules --check: %s" % (state.check_output or "no answer"))
    if state.loaded is None:
        parts.append("loaded rules not read: %s" % (load_error or "the kernel's audit subsystem did not answer"))
    elif key not in state.loaded:
        parts.append("no loaded rule has key %s" % key)
    return "; ".join(parts) or "in %s, compiled and loaded" % RULES_DIR


WOULD = "; apply writes %s and compiles it" % RULES_FILE


def rule_findings(control, subject, lines, key, before, after, check_mode, attempted, load_error, in_container):
    """One finding: the lines are in rules.d and compiled (and loaded, where the kernel
    answers). Rules right on disk that a container cannot load are ``skipped``. In check
    mode, actual and evidence say what is there now (and what an apply would do)."""
    ok_before, ok_after = before.ok(lines, key), after.ok(lines, key)
    status = fold(ok_before, ok_after, check_mode, attempted)
    # right on disk (pass or fixed) but not loaded: skipped in a container, else a failure
    if status in (PASS, FIXED) and after.loaded is None and load_error:
        status = SKIPPED if in_container else FAIL
    shown = before if check_mode else after
    missing = shown.missing(lines)
    actual = "%d of %d rules in %s%s" % (len(lines) - len(missing), len(lines), RULES_DIR,
                                         ", compiled" if shown.compiled else ", not compiled")
    evidence = _rules_evidence(shown, missing, key, load_error)
    if status == SKIPPED:
        evidence = ("not loaded: in a container (%s) the kernel's audit subsystem refuses rules (%s); "
                    "the files are right" % (in_container, load_error))
    elif check_mode and status == FAIL and attempted:
        evidence += WOULD
    return finding(control, status, "%d rules, key %s" % (len(lines), key), actual, evidence, subject)


def immutable_finding(policy, before, after, check_mode, attempted):
    shown = before if check_mode else after
    if not policy:
        return finding("AUD-004", SKIPPED, "not required by policy", shown.enabled_line or "no -e line",
                       "yoroi_audit_rules_immutable is false")
    ok_before = before.enabled_line == IMMUTABLE and before.compiled
    ok_after = after.enabled_line == IMMUTABLE and after.compiled
    status = fold(ok_before, ok_after, check_mode, attempted)
    if shown.enabled_line == IMMUTABLE and shown.compiled:
        evidence = "the last -e line wins (augenrules moves it to the end)"
    elif shown.enabled_line == IMMUTABLE:
        evidence = "the rules are not compiled into %s" % COMPILED_FILE
    else:
        evidence = "the last -e line of %s is %s" % (RULES_DIR, shown.enabled_line or "none")
    if check_mode and status == FAIL and attempted:
        evidence += WOULD
    return finding("AUD-004", status, "last -e line in %s is '%s'" % (RULES_DIR, IMMUTABLE),
                   shown.enabled_line or "no -e line", evidence)


def plugin_finding(policy, before, after, check_mode, attempted, installed):
    shown = before if check_mode else after
    if not policy:
        return finding("AUD-005", SKIPPED, "not required by policy", (shown.plugin or {}).get("active", "absent"),
                       "yoroi_audit_rules_syslog is false")
    if after.plugin is None:
        return finding("AUD-005", FAIL, "active = yes in %s" % SYSLOG_PLUGIN, "no such file",
                       "auditd is not installed yet (installed when applying)" if not installed
                       else "auditd ships no syslog plugin here")
    ok_before = before.plugin is not None and before.plugin.get("active") == "yes"
    ok_after = after.plugin.get("active") == "yes"
    status = fold(ok_before, ok_after, check_mode, attempted)
    evidence = "path = %s, args = %s" % (shown.plugin.get("path", "?"), shown.plugin.get("args", ""))
    if check_mode and status == FAIL and attempted:
        evidence += "; apply sets active = yes"
    return finding("AUD-005", status, "active = yes in %s" % SYSLOG_PLUGIN,
                   "active = %s" % shown.plugin.get("active", "(unset)"), evidence)


def service_finding(installed_before, installed_after, before, after, in_container, check_mode, attempted):
    """AUD-001 from (is-enabled, is-active) before and after. auditd cannot run in a
    container, so there it need not be active (the evidence says so)."""
    def ok(installed, service):
        enabled, active = service
        return installed and enabled == "enabled" and (active == "active" or bool(in_container))

    status = fold(ok(installed_before, before), ok(installed_after, after), check_mode, attempted)
    enabled, active = after
    actual = "not installed" if not installed_after else "%s, %s" % (enabled or "unknown", active or "unknown")
    if not installed_after and check_mode:
        evidence = "auditd is not installed yet (installed when applying)"
    else:
        evidence = "systemctl is-enabled auditd: %s; is-active: %s" % (enabled, active)
        if in_container and active != "active":
            evidence += "; in a container (%s) auditd cannot run, so it need not be active" % in_container
    return finding("AUD-001", status, "installed, enabled, active", actual, evidence)


def wanted_keys(watches, programs):
    """The keys the loaded rules must carry."""
    keys = set(group[1] for group in GROUPS) | set((watches or {}).values())
    if programs:
        keys.add(PRIVILEGED_KEY)
    return keys
