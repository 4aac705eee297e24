# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File integrity: an AIDE policy, its database, a scheduled check, and how to judge them.

Pure logic over what the module read: the policy file, the database and its directory
(``lstat`` facts, never followed), the check's systemd units and their state
(``systemctl show``), and the JSON report that AIDE itself writes at every run. This file
renders the policy and the units, parses the report and the unit state, and turns the
states before and after into findings. No AIDE run happens in an audit: the last
scheduled check's own report is read instead.

* The policy is one standalone AIDE configuration, ``/etc/aide/yoroi.conf`` (not Debian's
  aide.conf and its 200 snippets): system binaries, libraries, /boot and /etc, minus
  what churns. It sends every report to syslog (ident ``aide``, facility local0, so log
  forwarding carries it) and, as JSON, to ``report.json`` beside the database.
* The database lives in a directory of root's (``/var/lib/yoroi/aide``, 0700): Debian's
  ``/var/lib/aide`` belongs to the ``_aide`` account, which could replace a file in it.
* A database that is a symlink, not root's or readable by others, or older than the
  policy or than the age limit, is not trusted: FIM-002 fails.
"""

from __future__ import annotations

import collections
import datetime
import json
import re

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    finding, fold)

CONTROLS = collections.OrderedDict([
    ("FIM-001", "AIDE installed with the Yoroi policy (system binaries, libraries, /boot and /etc; "
                "churning paths excluded), writable by root only"),
    ("FIM-002", "the AIDE database exists, is root's only (0600) and is not stale"),
    ("FIM-003", "the scheduled AIDE check is enabled and reports through syslog"),
    ("FIM-004", "the last AIDE check found no change to the covered files"),
])

PACKAGE = "aide"
AIDE = "/usr/bin/aide"
POLICY_DIR = "/etc/aide"
POLICY = "/etc/aide/yoroi.conf"
DB_DIR = "/var/lib/yoroi/aide"
DATABASE = DB_DIR + "/aide.db"
NEW_DATABASE = DB_DIR + "/aide.db.new"
PREVIOUS_DATABASE = DB_DIR + "/aide.db.previous"
REPORT = DB_DIR + "/report.json"
SERVICE_NAME = "yoroi-aide-check.service"
TIMER_NAME = "yoroi-aide-check.timer"
SERVICE = "/etc/systemd/system/" + SERVICE_NAME
TIMER = "/etc/systemd/system/" + TIMER_NAME
SYSLOG_URL = "report_url=syslog:LOG_LOCAL0"
REINIT_STEP = "yoroi apply -t file_integrity -e yoroi_file_integrity_reinit=true"

# What the policy always covers (merged /usr: /bin, /sbin, /lib are links, recorded as such).
COVERED = ("/bin", "/sbin", "/lib", "/lib64", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64",
           "/usr/libexec", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/boot", "/etc")
# What changes on its own on a running host; a path here and everything below it.
CHURN = ("/etc/mtab", "/etc/adjtime", "/etc/resolv.conf", "/etc/lvm/archive", "/etc/lvm/backup",
         "/etc/.updated", "/boot/grub/grubenv", "/var/log", "/var/cache", "/var/lib/apt/lists")
# Every attribute that a tampered file changes; SHA-512 as the content hash.
ATTRIBUTES = "p+u+g+ftype+i+n+s+b+m+c+l+acl+xattrs+caps+sha512"
# AIDE's exit codes: 0 nothing found, 1..7 added (1), removed (2), changed (4) entries;
# 14 and above are errors (write, argument, unimplemented, configuration, I/O, version).
DIFFERENCES = frozenset(range(1, 8))
# A path that can stand in an AIDE rule: no whitespace, no regex or macro characters.
RULE_PATH = re.compile(r"^(/(?!\.\.?(/|$))[A-Za-z0-9._+,:~-]+)+$")

Stat = collections.namedtuple("Stat", "kind uid mode mtime")  # kind: file, dir, link, other


class PolicyError(ValueError):
    """A path or schedule that cannot stand in the policy or the timer."""


def check_path(path, what):
    if not isinstance(path, str) or not RULE_PATH.match(path):
        raise PolicyError("%s %r is not an absolute, normalized path of letters, digits and ._+,:~-" % (what, path))
    return path


def rule_regex(path):
    """A path as AIDE's regular expression (a literal: '.' and '+' escaped)."""
    return re.sub(r"([.+])", r"\\\1", path)


def covered_paths(extra_paths):
    return sorted(set(COVERED) | set(check_path(p, "extra path") for p in extra_paths or []))


def excluded_paths(exclude, covered):
    paths = sorted(set(CHURN) | set(check_path(p, "excluded path") for p in exclude or []))
    for path in paths:
        for top in covered:
            if top == path or top.startswith(path + "/"):
                raise PolicyError("excluded path %s would exclude the covered path %s" % (path, top))
    return paths


def render_policy(extra_paths=(), exclude=()):
    """The text of POLICY."""
    covered = covered_paths(extra_paths)
    excluded = excluded_paths(exclude, covered)
    out = ["# Managed by Yoroi (FIM-001); rewritten on every apply.",
           "# After a planned change, re-initialize the database with:",
           "#   " + REINIT_STEP,
           "database_in=file:" + DATABASE,
           "database_out=file:" + NEW_DATABASE,
           "gzip_dbout=yes",
           "report_ignore_e2fsattrs=VNIE",
           "# every report to syslog (ident aide), one line per added, removed or changed entry",
           "report_level=list_entries",
           "report_format=plain",
           SYSLOG_URL,
           "# and as JSON for the audit (FIM-004): the scheduled check's own result",
           "report_format=json",
           "report_url=file:" + REPORT,
           "YoroiFile = " + ATTRIBUTES,
           "", "# covered"]
    out.extend("%s YoroiFile" % rule_regex(path) for path in covered)
    out.extend(["", "# excluded: what changes on its own (a path and everything below it)"])
    out.extend("!%s(/.*)?$" % rule_regex(path) for path in excluded)
    return "\n".join(out) + "\n"


def render_service(timeout, aide=AIDE):
    return "\n".join([
        "# Managed by Yoroi (FIM-003).",
        "[Unit]",
        "Description=Yoroi file integrity check (AIDE)",
        "Documentation=man:aide(1)",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=%s --config=%s --check" % (aide, POLICY),
        "# 1-7: differences found, reported to syslog and %s; 14 and above: errors" % REPORT,
        "SuccessExitStatus=1 2 3 4 5 6 7",
        "SyslogIdentifier=aide",
        "Nice=19",
        "IOSchedulingClass=idle",
        "UMask=0077",
        "TimeoutStartSec=%d" % int(timeout),
        "",
    ])


def render_timer(schedule, randomized_delay):
    if not schedule or "\n" in schedule or "\r" in schedule:
        raise PolicyError("the schedule must be one line")
    return "\n".join([
        "# Managed by Yoroi (FIM-003).",
        "[Unit]",
        "Description=Run the Yoroi file integrity check (AIDE)",
        "",
        "[Timer]",
        "OnCalendar=%s" % schedule,
        "RandomizedDelaySec=%d" % int(randomized_delay),
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


# --- parsing --------------------------------------------------------------------------

def parse_time(text):
    """Seconds since the epoch of AIDE's ``2026-11-28 02:24:55 +0000``; None if unreadable."""
    try:
        return datetime.datetime.strptime((text or "").strip(), "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return None


class Report(object):
    """The JSON report of AIDE's last run (``report.json``): a check, or an init/update
    that wrote a new database."""

    def __init__(self, data):
        self.outline = str(data.get("outline", ""))
        self.version = str(data.get("aide_version", ""))
        self.new_database = bool(data.get("new_database"))
        self.time = parse_time(data.get("end_time")) or parse_time(data.get("start_time"))
        self.entries = {}
        for kind in ("added", "removed", "changed"):
            value = data.get(kind) or {}
            self.entries[kind] = sorted(value) if isinstance(value, dict) else []
        self.differences = "found differences" in self.outline

    @property
    def kind(self):
        if not self.new_database:
            return "check"
        return "init" if "initialized" in self.outline else "update"

    def paths(self):
        """[(kind, path)]: files and links first, then directories (whose mtime a new file changes)."""
        return [(kind, path) for kind in ("added", "removed", "changed") for path in self.entries[kind]]


def parse_report(text):
    """(Report or None, why not)."""
    if text is None:
        return None, "no AIDE report at %s: no check has run" % REPORT
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, "the AIDE report %s is not JSON (a check may be running): %s" % (REPORT, exc)
    if not isinstance(data, dict) or "outline" not in data:
        return None, "the AIDE report %s has no outline" % REPORT
    return Report(data), ""


def parse_systemctl_show(text):
    """{unit id: {property: value}} from ``systemctl show UNIT... --property=Id,...``."""
    units, current = {}, {}
    for line in (text or "").splitlines() + [""]:
        if not line.strip():
            if current.get("Id"):
                units[current["Id"]] = current
            current = {}
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            current[key] = value
    return units


# --- judging --------------------------------------------------------------------------

def distrust(info, kind, loose_bits):
    """Why a file or directory is not trusted ("" when it is): missing, a symlink, of
    another kind, not root's, or with any of ``loose_bits`` set."""
    if info is None:
        return "missing"
    if info.kind == "link":
        return "a symlink (never followed)"
    if info.kind != kind:
        return "not a %s" % ("regular file" if kind == "file" else "directory")
    if info.uid != 0:
        return "owned by uid %d, not root" % info.uid
    if info.mode & loose_bits:
        return "mode %04o (%s)" % (info.mode & 0o7777, "writable by group or others" if loose_bits == 0o022
                                   else "open to group or others")
    return ""


class State(object):
    """One reading of the host's file integrity state."""

    def __init__(self, installed, policy_text, policy_stat, policy_dir_stat, db_stat, new_db_stat, db_dir_stat,
                 service_text, timer_text, units, report_text, now):
        self.installed = installed
        self.policy_text = policy_text
        self.policy_stat = policy_stat
        self.policy_dir_stat = policy_dir_stat
        self.db_stat = db_stat
        self.new_db_stat = new_db_stat
        self.db_dir_stat = db_dir_stat
        self.service_text = service_text
        self.timer_text = timer_text
        self.units = units or {}
        self.report, self.report_error = parse_report(report_text)
        self.now = now

    # FIM-001
    def policy_distrust(self):
        why = distrust(self.policy_dir_stat, "dir", 0o022)
        if why:
            return "%s is %s" % (POLICY_DIR, why)
        why = distrust(self.policy_stat, "file", 0o022)
        return "%s is %s" % (POLICY, why) if why else ""

    def policy_ok(self, wanted):
        return self.installed and not self.policy_distrust() and self.policy_text == wanted

    # FIM-002
    def database_problem(self, max_age_days):
        why = distrust(self.db_dir_stat, "dir", 0o077)
        if why:
            return "%s is %s" % (DB_DIR, why)
        why = distrust(self.db_stat, "file", 0o077)
        if why:
            if why == "missing" and self.new_db_stat is not None:
                return "%s is missing; %s was left by an interrupted initialization" % (DATABASE, NEW_DATABASE)
            return "%s is %s" % (DATABASE, why)
        if self.policy_stat is not None and self.policy_stat.kind == "file" and self.db_stat.mtime < self.policy_stat.mtime:
            return "%s is older than the policy %s (stale)" % (DATABASE, POLICY)
        age = self.now - self.db_stat.mtime
        if age > max_age_days * 86400:
            return "%s is %d days old, more than %d (stale)" % (DATABASE, age // 86400, max_age_days)
        return ""

    def database_trusted(self):
        """The database may be read as the base of an update."""
        return not distrust(self.db_dir_stat, "dir", 0o077) and not distrust(self.db_stat, "file", 0o077)

    # FIM-003
    def timer_state(self):
        timer = self.units.get(TIMER_NAME, {})
        return timer.get("UnitFileState", ""), timer.get("ActiveState", "")

    def schedule_problem(self, service, timer):
        problems = []
        if self.service_text != service:
            problems.append("%s %s" % (SERVICE, "missing" if self.service_text is None else "differs"))
        if self.timer_text != timer:
            problems.append("%s %s" % (TIMER, "missing" if self.timer_text is None else "differs"))
        enabled, active = self.timer_state()
        if enabled != "enabled":
            problems.append("%s is %s" % (TIMER_NAME, enabled or "not loaded"))
        if active != "active":
            problems.append("%s is %s" % (TIMER_NAME, active or "not loaded"))
        if self.policy_text is None or SYSLOG_URL not in self.policy_text.splitlines():
            problems.append("the policy sends no report to syslog")
        return "; ".join(problems)

    # FIM-004
    def last_check(self, max_check_age_hours, max_reported):
        """(ok, actual, evidence)."""
        if self.report is None:
            return False, "no check result", self.report_error
        report = self.report
        when = datetime.datetime.fromtimestamp(report.time, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC") if report.time else "an unknown time"
        service = self.units.get(SERVICE_NAME, {})
        result, status = service.get("Result", ""), service.get("ExecMainStatus", "")
        if result and result != "success":
            return False, "the last scheduled check failed (%s, exit %s)" % (result, status or "?"), \
                "journalctl -t aide -u %s says why" % SERVICE_NAME
        if report.time is None or self.now - report.time > max_check_age_hours * 3600:
            return False, "no AIDE run since %s" % when, \
                "the last report is older than %d hours: is %s running?" % (max_check_age_hours, TIMER_NAME)
        counts = ", ".join("%d %s" % (len(report.entries[k]), k) for k in ("added", "removed", "changed")
                           if report.entries[k])
        if report.kind == "init":
            return True, "database initialized at %s, no check since" % when, report.outline
        if report.kind == "update":
            return True, "database re-initialized at %s, no check since" % when, \
                "the update accepted %s (each named in syslog, ident aide)" % (counts or "no difference")
        if not report.differences:
            return True, "no change found at %s" % when, report.outline
        paths = report.paths()
        listed = ["%s %s" % item for item in paths[:max_reported]]
        more = " and %d more" % (len(paths) - max_reported) if len(paths) > max_reported else ""
        return False, "changes found at %s: %s" % (when, counts), \
            "%s%s; after a planned change: %s" % ("; ".join(listed), more, REINIT_STEP)


def policy_finding(before, after, wanted, check_mode, attempted):
    ok_before, ok_after = before.policy_ok(wanted), after.policy_ok(wanted)
    status = fold(ok_before, ok_after, check_mode, attempted)
    state = after if not check_mode else before
    if not state.installed:
        actual, evidence = "aide is not installed", "dpkg lists no %s" % PACKAGE
    elif state.policy_distrust():
        actual, evidence = "policy not trusted", state.policy_distrust()
    elif state.policy_text != wanted:
        actual = "policy missing" if state.policy_text is None else "policy differs"
        evidence = POLICY
    else:
        actual, evidence = "policy in place", "%s, root's, covers %s" % (POLICY, ", ".join(covered_from(wanted)))
    return finding("FIM-001", status, CONTROLS["FIM-001"], actual, evidence, subject=POLICY)


def covered_from(policy_text):
    return [line.split()[0].replace("\\", "") for line in policy_text.splitlines()
            if line.startswith("/") and line.endswith(" YoroiFile")]


def database_finding(before, after, max_age_days, check_mode, attempted, applied_ok=True, note=""):
    problem_before = before.database_problem(max_age_days)
    problem_after = after.database_problem(max_age_days)
    status = fold(not problem_before, not problem_after, check_mode, attempted, applied_ok)
    problem = problem_before if check_mode else problem_after
    if problem:
        actual = "not usable" if "stale" not in problem else "stale"
        evidence = problem + ("" if "stale" not in problem else "; after review: " + REINIT_STEP)
    else:
        state = before if check_mode else after
        actual = "present, root's, 0%o" % (state.db_stat.mode & 0o777)
        evidence = "%s, %s" % (DATABASE, datetime.datetime.fromtimestamp(
            state.db_stat.mtime, datetime.timezone.utc).strftime("written %Y-%m-%d %H:%M UTC"))
    if note:
        evidence = "%s; %s" % (evidence, note)
    return finding("FIM-002", status, CONTROLS["FIM-002"], actual, evidence, subject=DATABASE)


def schedule_finding(before, after, service, timer, check_mode, attempted):
    problem_before = before.schedule_problem(service, timer)
    problem_after = after.schedule_problem(service, timer)
    status = fold(not problem_before, not problem_after, check_mode, attempted)
    problem = problem_before if check_mode else problem_after
    if problem:
        return finding("FIM-003", status, CONTROLS["FIM-003"], "not scheduled", problem, subject=TIMER_NAME)
    return finding("FIM-003", status, CONTROLS["FIM-003"], "%s enabled and active" % TIMER_NAME,
                   "%s runs aide --check; reports to syslog (ident aide, local0) and %s" % (SERVICE_NAME, REPORT),
                   subject=TIMER_NAME)


def check_finding(before, after, max_check_age_hours, max_reported, check_mode, attempted):
    ok_before, actual_before, evidence_before = before.last_check(max_check_age_hours, max_reported)
    ok_after, actual_after, evidence_after = after.last_check(max_check_age_hours, max_reported)
    status = fold(ok_before, ok_after, check_mode, attempted)
    if check_mode:
        actual, evidence = actual_before, evidence_before
    else:
        actual, evidence = actual_after, evidence_after
    return finding("FIM-004", status, CONTROLS["FIM-004"], actual, evidence, subject=REPORT)


def reinit_reason(before, writes, reinit, max_age_days):
    """Why the database is (re)built by this apply, or "" when it is left as it is.

    Missing or untrusted: built. Asked for (the documented step after a planned change):
    rebuilt. This run changed the policy or the check's units (files the database covers):
    rebuilt, so Yoroi's own change is not reported by the next check. A database older than
    the policy (edited by hand since): rebuilt. A database that is only old is never
    rebuilt on its own (it would accept whatever changed meanwhile): FIM-002 fails until
    someone who reviewed the last check asks for it."""
    if not before.database_trusted():
        return before.database_problem(max_age_days) or "the database is missing"
    if reinit:
        return "re-initialization was asked for"
    if writes:
        return "this run changed %s" % ", ".join(sorted(writes))
    problem = before.database_problem(max_age_days)
    if problem and "older than the policy" in problem:
        return problem
    return ""


def aide_argv(mode, config=POLICY):
    if mode not in ("init", "update"):
        raise ValueError(mode)
    return ["--config=%s" % config, "--%s" % mode]


def run_ok(mode, rc):
    """Whether AIDE's exit code means a new database was written."""
    return rc == 0 or (mode == "update" and rc in DIFFERENCES)
