# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File permissions and login banners: pure logic over what the module read.

* Sensitive files and directories (PRM-001): a table of {path or glob: owner, groups
  allowed, the loosest mode allowed}. A mode is only ever made stricter (the bits the
  policy does not allow are removed; a mode already stricter stays); a wrong owner or
  group is set. A symlink is never followed nor changed: it is reported.
* The default umask (PRM-002): ``UMASK`` in login.defs and a profile.d snippet for
  shells; a umask already stricter than the policy is kept.
* Home directories (PRM-003): not readable, writable or searchable by others (0750 or
  stricter); the home of a protected account is reported, never changed.
* Files without an owner or a group in system paths (PRM-004): reported, never changed.
* Banners (BNR-001): /etc/issue and /etc/issue.net carry the SSH banner's text
  (``_sshd.render_banner``: the site's warning with its contact), and no OS details.
"""

from __future__ import annotations

import collections
import re
import stat

from ansible_collections.yoroi.baseline.plugins.module_utils import _sshd
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import (
    FAIL, PASS, SKIPPED, finding, fold)
from ansible_collections.yoroi.baseline.plugins.module_utils._hostfiles import parse_login_defs
from ansible_collections.yoroi.baseline.plugins.module_utils._password_policy import set_values

CONTROLS = collections.OrderedDict([
    ("PRM-001", "sensitive files and directories (passwd, shadow, group, gshadow, sshd host keys, cron, "
                "sudoers, banners) have their owner and group, and a mode no looser than the policy"),
    ("PRM-002", "the default umask is the policy's (027) or stricter, in login.defs and for shells"),
    ("PRM-003", "home directories are not readable, writable or searchable by others (0750 or stricter)"),
    ("PRM-004", "no file or directory in system paths without an owner or a group"),
    ("BNR-001", "/etc/issue and /etc/issue.net carry the site's warning and contact, without OS details"),
])

LOGIN_DEFS = "/etc/login.defs"
PROFILE_FILE = "/etc/profile.d/yoroi-umask.sh"
BANNER_FILES = ("/etc/issue", "/etc/issue.net")
DEFAULT_UMASK = "027"
HOME_MODE = 0o750

# A rule: the path (a glob matches the entries of one directory), the kind it must be,
# its owner, the groups allowed (the first is set when the group is none of them; a group
# the host lacks is left out) and the loosest mode allowed.
Rule = collections.namedtuple("Rule", "path kind owner groups mode")
CRON_DIRS = ("/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly",
             "/etc/cron.yearly")
SENSITIVE = (
    (Rule("/etc/passwd", "file", "root", ("root",), 0o644),
     Rule("/etc/passwd-", "file", "root", ("root",), 0o644),
     Rule("/etc/group", "file", "root", ("root",), 0o644),
     Rule("/etc/group-", "file", "root", ("root",), 0o644),
     Rule("/etc/shadow", "file", "root", ("shadow", "root"), 0o640),
     Rule("/etc/shadow-", "file", "root", ("shadow", "root"), 0o640),
     Rule("/etc/gshadow", "file", "root", ("shadow", "root"), 0o640),
     Rule("/etc/gshadow-", "file", "root", ("shadow", "root"), 0o640),
     Rule("/etc/ssh/sshd_config", "file", "root", ("root",), 0o600),
     Rule("/etc/ssh/ssh_host_*_key", "file", "root", ("root",), 0o600),
     Rule("/etc/crontab", "file", "root", ("root",), 0o600))
    + tuple(Rule(path, "directory", "root", ("root",), 0o700) for path in CRON_DIRS)
    # what cron runs: root's, and writable by root alone (cron.d entries are read, the others run)
    + (Rule("/etc/cron.d/*", "file", "root", ("root",), 0o644),)
    + tuple(Rule(path + "/*", "file", "root", ("root",), 0o755) for path in CRON_DIRS[1:])
    + (Rule("/etc/sudoers", "file", "root", ("root",), 0o440),
       Rule("/etc/sudoers.d", "directory", "root", ("root",), 0o750),
       Rule("/etc/sudoers.d/*", "file", "root", ("root",), 0o440))
    + tuple(Rule(path, "file", "root", ("root",), 0o644) for path in BANNER_FILES)
)

# What an lstat says a path is.
Info = collections.namedtuple("Info", "kind uid gid mode")


def kind_of(mode):
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def info_of(st):
    """Info from an os.stat_result (of an lstat)."""
    return Info(kind_of(st.st_mode), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


# --- what is wanted -------------------------------------------------------------------------------


Target = collections.namedtuple("Target", "control path kind owner groups mode keep")
# keep: None, or why nothing is changed (a protected account's home): it is reported only.


def sensitive_targets(expand):
    """[Target] of the table, a glob expanded by ``expand(pattern)`` -> [path]."""
    targets = []
    for rule in SENSITIVE:
        paths = sorted(expand(rule.path)) if "*" in rule.path else [rule.path]
        targets.extend(Target("PRM-001", path, rule.kind, rule.owner, rule.groups, rule.mode, None) for path in paths)
    return targets


# Directories some account may have as its home but that others use too.
SHARED_DIRS = frozenset(["/", "/tmp", "/var/tmp", "/var", "/srv", "/opt", "/usr", "/home", "/etc", "/run",
                         "/var/www", "/var/lib", "/var/spool", "/var/mail", "/dev/shm", "/mnt", "/media"])


def home_targets(accounts, uid_min, protected):
    """[Target] of the homes of root and of every account with a UID from ``uid_min``
    (``nobody`` and homes such as / or /nonexistent aside). ``protected``: {name: reason}."""
    targets, seen = [], set()
    for account in accounts:
        home = (account.home or "").rstrip("/")
        if account.uid != 0 and (account.uid < uid_min or account.uid == 65534):
            continue
        if not home or home in ("/nonexistent", "/dev/null") or home in seen:
            continue
        seen.add(home)
        keep = None
        if account.name in protected:
            keep = "the home of a protected account (%s) is reported, never changed" % protected[account.name]
        targets.append(Target("PRM-003", home, "directory", account.name, None, HOME_MODE, keep))
    return targets


# --- evaluate and plan ----------------------------------------------------------------------------


def describe(info, names, groups):
    """``owner:group mode`` of an Info, names where the host has them."""
    return "%s:%s %04o" % (names.get(info.uid, info.uid), groups.get(info.gid, info.gid), info.mode)


def evaluate(target, info, uids, gids):
    """(problems, chmod, chown) of one target: ``info`` (None: missing), ``uids``/``gids``
    {name: id}. ``chmod`` is the new mode or None; ``chown`` (uid, gid) or None (-1 keeps
    one). A symlink, a wrong kind or a kept target plans nothing."""
    if info is None:
        return [], None, None
    if info.kind == "symlink":
        return ["a symbolic link: not followed, not changed"], None, None
    if info.kind != target.kind:
        return ["a %s, not a %s: not changed" % (info.kind, target.kind)], None, None
    problems = []
    mode = info.mode & target.mode
    if mode != info.mode:
        problems.append("mode %04o allows %04o more than %04o" % (info.mode, info.mode & ~target.mode, target.mode))
    uid = uids.get(target.owner)
    if uid is not None and info.uid != uid:
        problems.append("owner %s, not %s" % (info.uid, target.owner))
    gid = None
    if target.groups:
        allowed = [gids[name] for name in target.groups if name in gids] or [0]
        if info.gid not in allowed:
            gid = allowed[0]
            problems.append("group %s, not %s" % (info.gid, " or ".join(n for n in target.groups if n in gids) or "root"))
    if target.keep or not problems:
        return problems, None, None
    if target.control == "PRM-003" and ((uid is not None and info.uid != uid) or info.mode & 0o1000
                                        or target.path in SHARED_DIRS):
        # a "home" the account does not own, with the sticky bit, or a shared directory
        # (an account whose home is /tmp or /srv) is reported: tightening it would take it
        # from everyone else
        problems.append("not the account's own directory: reported, not changed")
        return problems, None, None
    chown = None
    if (uid is not None and info.uid != uid) or gid is not None:
        if target.control == "PRM-003":  # a home's owner is reported, never changed
            chown = None
        else:
            chown = (uid if uid is not None and info.uid != uid else -1, gid if gid is not None else -1)
    return problems, (mode if mode != info.mode else None), chown


def planned_info(info, chmod, chown):
    """The Info a planned change leaves (check mode)."""
    if info is None:
        return None
    uid, gid = info.uid, info.gid
    if chown:
        uid = chown[0] if chown[0] != -1 else uid
        gid = chown[1] if chown[1] != -1 else gid
    return Info(info.kind, uid, gid, info.mode if chmod is None else chmod)


def expected_text(target):
    groups = "/".join(target.groups) if target.groups else target.owner + "'s group"
    return "%s %s:%s %04o or stricter" % (target.kind, target.owner, groups, target.mode)


def target_findings(targets, before, after, uids, gids, names, groups, check_mode, errors):
    """One finding per target (subject: its path). ``before``/``after``: {path: Info or
    None} read first and read back (or planned, in check mode); ``errors``: {path: reason}
    of the changes that failed."""
    findings = []
    for target in targets:
        info, now = before.get(target.path), after.get(target.path)
        if info is None:
            findings.append(finding(target.control, SKIPPED, expected_text(target), "missing",
                                    "%s does not exist here" % target.path, subject=target.path))
            continue
        problems, chmod, chown = evaluate(target, info, uids, gids)
        left, _m, _o = evaluate(target, now, uids, gids)
        error = errors.get(target.path)
        attempted = bool(chmod is not None or chown)
        status = fold(not problems, not left and not error, check_mode, attempted=attempted, applied_ok=error is None)
        if target.keep and problems:
            # a protected account's home is an exemption, reported like every other one
            # (skipped with the reason), not drift a run could ever remove
            status = SKIPPED
        notes = []
        if problems:
            notes.append("; ".join(problems))
        if attempted and not error:
            notes.append("would be made stricter" if check_mode else "made stricter")
        if error:
            notes.append("the change failed: %s" % error)
        if target.keep and problems:
            notes.append(target.keep)
        shown = info if check_mode else now
        findings.append(finding(target.control, status, expected_text(target),
                                describe(shown, names, groups) if shown.kind == target.kind else shown.kind,
                                "; ".join(notes) or "as the policy asks", subject=target.path))
    return findings


# --- umask ----------------------------------------------------------------------------------------


def umask_value(text):
    """The umask bits of a value such as ``027`` or ``0027``; None when it is not octal."""
    try:
        value = int(str(text).strip(), 8)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= 0o777 else None


def strict_enough(current, wanted):
    """A umask masks at least the policy's bits."""
    value = umask_value(current)
    return value is not None and value & umask_value(wanted) == umask_value(wanted)


def render_profile(umask):
    return ("# Managed by Yoroi (PRM-002): the default umask of login shells. Edits here are overwritten.\n"
            "umask %s\n" % umask)


def parse_profile_umask(text):
    """The last ``umask NNN`` of a shell snippet, or None."""
    found = None
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] == "umask":
            found = words[1]
    return found


def plan_umask(umask, login_defs, profile):
    """{path: (before, after)} of the two files that change. A login.defs UMASK already
    stricter is kept; the profile snippet is ours and is written whole."""
    files = collections.OrderedDict()
    current = _hostfiles_umask(login_defs)
    if not strict_enough(current, umask):
        files[LOGIN_DEFS] = (login_defs, set_values(login_defs, {"UMASK": umask}, style="space"))
    if not strict_enough(parse_profile_umask(profile), umask) or profile is None:
        files[PROFILE_FILE] = (profile, render_profile(umask))
    return files


def _hostfiles_umask(login_defs):
    return parse_login_defs(login_defs).get("UMASK")


def umask_findings(umask, before, after, check_mode):
    """PRM-002 for login.defs and the profile snippet. ``before``/``after``: {path: text}."""
    findings = []
    for path, read in ((LOGIN_DEFS, _hostfiles_umask), (PROFILE_FILE, parse_profile_umask)):
        was, now = read(before.get(path)), read(after.get(path))
        ok_before, ok_after = strict_enough(was, umask), strict_enough(now, umask)
        status = fold(ok_before, ok_after, check_mode, attempted=before.get(path) != after.get(path))
        shown = was if check_mode else now
        findings.append(finding("PRM-002", status, "umask %s or stricter" % umask,
                                "umask %s" % shown if shown else "no umask set",
                                "%s %s" % (path, "as the policy asks" if ok_after and ok_before else
                                           ("would be written" if check_mode else "written") if ok_after
                                           else "differs from the policy"),
                                subject=path))
    return findings


# --- banners --------------------------------------------------------------------------------------


# agetty escapes for the OS, its release, version and machine; OS names and Debian codenames.
OS_DETAILS = re.compile(r"\\[mrsvS]|\b(Debian|Ubuntu|GNU/Linux|Linux|Raspbian|bookworm|trixie|bullseye|buster)\b",
                        re.IGNORECASE)


def os_details(text):
    """The OS details a banner gives away, in order, each once."""
    found = []
    for match in OS_DETAILS.finditer(text or ""):
        if match.group(0) not in found:
            found.append(match.group(0))
    return found


def render_banner(template, contact):
    """The banner: the SSH banner's own rendering (same text, same contact)."""
    return _sshd.render_banner(template, contact)


def banner_problems(text, wanted, contact):
    problems = []
    if text is None:
        return ["missing"]
    if text != wanted:
        problems.append("differs from the site's banner")
    details = os_details(text)
    if details:
        problems.append("gives OS details: %s" % ", ".join(details))
    if not contact:
        problems.append("no contact to report to (yoroi_site_contact is not set)")
    return problems


def banner_findings(paths, wanted, contact, before, after, check_mode):
    """BNR-001 for each banner file (subject: its path). ``before``/``after``: {path: text}."""
    findings = []
    expected = "the site's banner with its contact, no OS details"
    for path in paths:
        was, now = banner_problems(before.get(path), wanted, contact), banner_problems(after.get(path), wanted, contact)
        status = fold(not was, not now, check_mode, attempted=before.get(path) != after.get(path))
        shown = was if check_mode else now
        notes = "; ".join(shown)
        if before.get(path) != after.get(path):
            notes += ("; " if notes else "") + ("would be written" if check_mode else "written")
        notes = notes or "as the policy asks"
        findings.append(finding("BNR-001", status, expected, "; ".join(shown) or "the site's banner", notes,
                                subject=path))
    details = os_details(wanted)
    if details:  # the site's own text gives them away: it is written all the same, and fails
        findings.append(finding("BNR-001", FAIL, expected, "the site's banner text gives OS details: %s" % ", ".join(details),
                                "change the banner text (yoroi_ssh_banner_text)", subject="banner text"))
    return findings


# --- files without an owner -----------------------------------------------------------------------


def unowned(found, uids, gids):
    """[(path, why)] of ``found`` [(path, uid, gid)] whose uid or gid the host does not know."""
    result = []
    for path, uid, gid in found:
        why = []
        if uid not in uids:
            why.append("no owner (uid %d)" % uid)
        if gid not in gids:
            why.append("no group (gid %d)" % gid)
        if why:
            result.append((path, ", ".join(why)))
    return result


def unowned_findings(found, more):
    """PRM-004: reported only. ``found``: [(path, why)]; ``more``: how many past the bound."""
    expected = "an owner and a group the host knows"
    status = PASS if not found and not more else FAIL
    findings = [finding("PRM-004", FAIL, expected, why, "reported, not changed: give it an owner (chown) or remove it",
                        subject=path) for path, why in found]
    if more:
        findings.append(finding("PRM-004", FAIL, expected, "%d more not listed" % more, "the walk stopped listing them",
                                subject="(%d more)" % more))
    if status == PASS:
        findings.append(finding("PRM-004", PASS, expected, "none found", ""))
    return findings
