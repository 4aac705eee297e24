# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups with restic, proven by restore drills.

Pure functions: the inputs checked, the files the host needs rendered, restic's outputs
parsed (``restic snapshots --json``, ``restic check``, ``restic ls --json``), the controls
BAK-001..BAK-004 and the drill's DRL-001..DRL-003 evaluated. The modules
(``restic_backup``, ``backup_drill``) read the host and run restic; the comparison of a
restored tree with the live files (:func:`compare_file`) opens every file without
following a symbolic link and hashes it in chunks.

The repository password never leaves the host's password file: restic reads it through
``RESTIC_PASSWORD_FILE`` (never an argument), and no finding or result carries it.
"""

from __future__ import annotations

import calendar
import errno
import hashlib
import json
import os
import re
import stat
import subprocess
import time

from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, PASS, SKIPPED, finding

CONTROLS = {
    "BAK-001": "a snapshot younger than the maximum age exists for every protected path",
    "BAK-002": "the last repository check (with a sampled read of the data) passed and is recent",
    "BAK-003": "the backup timer (yoroi-backup.timer) is enabled and active",
    "BAK-004": "the repository password is in a root-only 0600 file, never in a unit or an argument",
}
DRILL_CONTROLS = {
    "DRL-001": "the repository passes restic check with a sampled read of the data",
    "DRL-002": "the latest snapshot restores and every file unchanged since it matches the live file",
    "DRL-003": "the latest snapshot is younger than the maximum age",
}

CONFIG_DIR = "/etc/yoroi/backup"
PASSWORD_FILE = CONFIG_DIR + "/password"
ENV_FILE = CONFIG_DIR + "/restic.env"
PATHS_FILE = CONFIG_DIR + "/paths"
EXCLUDE_FILE = CONFIG_DIR + "/excludes"
KNOWN_HOSTS = CONFIG_DIR + "/known_hosts"
SCRIPT = CONFIG_DIR + "/run-backup"
SERVICE = "/etc/systemd/system/yoroi-backup.service"
TIMER = "/etc/systemd/system/yoroi-backup.timer"
STATE_DIR = "/var/lib/yoroi/backup"
CHECK_STATE = STATE_DIR + "/check.json"
SSH_KEY = "/root/.ssh/yoroi_backup"
CACHE_DIR = "/var/cache/yoroi-backup"
TAG = "yoroi"
TIMER_UNIT = "yoroi-backup.timer"
SERVICE_UNIT = "yoroi-backup.service"
NOT_CONFIGURED = "no backup configured: the repository and its password are not both set"

# A repository as restic names it: a local absolute path, sftp:user@host:/path, or a
# backend URL such as s3:https://host/bucket. No whitespace, quote or shell metacharacter:
# the string lands in an environment file and in the service's script.
REPOSITORY = re.compile(r"^(?:/|sftp:|s3:|rest:|b2:|azure:|gs:|swift:|rclone:)[A-Za-z0-9@%+=:,./_~-]*$")
SFTP = re.compile(r"^sftp:(?P<user>[A-Za-z_][A-Za-z0-9_.-]{0,31})@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>/[A-Za-z0-9@%+=:,./_~-]*)$")
SUBSET = re.compile(r"^(?:[1-9][0-9]?(?:\.[0-9]+)?%|100%|[1-9][0-9]*/[1-9][0-9]*)$")
HOST_KEY = re.compile(r"^[^\s#][^\s]* (?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3}$")
ENV_NAME = re.compile(r"^(?!RESTIC_PASSWORD)[A-Z_][A-Z0-9_]*$")
ON_CALENDAR = re.compile(r"^[A-Za-z0-9*:/,.~ -]+$")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
CHUNK = 1 << 20


class InputError(ValueError):
    """An input the module refuses before any change."""


# --- inputs --------------------------------------------------------------------------


def sftp_parts(repository):
    """{user, host, path} of an sftp: repository, else None."""
    match = SFTP.match(repository or "")
    return match.groupdict() if match else None


def check_path(path, what):
    if not path or not path.startswith("/") or CONTROL_CHARS.search(path):
        raise InputError("%s %r is not an absolute path on one line" % (what, path))
    parts = path.split("/")
    if ".." in parts or "." in parts or "//" in path or (path != "/" and path.endswith("/")):
        raise InputError("%s %r is not a normalized path (no '.', '..', '//' or trailing '/')" % (what, path))


def check_inputs(params):
    """Raise InputError naming the first wrong input; the password is never quoted."""
    repository = params.get("repository") or ""
    if repository and (not REPOSITORY.match(repository) or repository.startswith("sftp:") and not sftp_parts(repository)):
        raise InputError("repository %r is not a local absolute path, sftp:user@host:/path or a restic backend "
                         "URL without spaces, quotes or shell metacharacters" % repository)
    if repository.startswith("/"):
        check_path(repository, "repository")
    password = params.get("password") or ""
    if "\n" in password.rstrip("\n") or "\x00" in password:
        raise InputError("the password must be one line")
    if not params.get("paths") and repository:
        raise InputError("paths: at least one path to protect is needed")
    for path in params.get("paths") or []:
        check_path(path, "path")
    for pattern in params.get("exclude") or []:
        if not pattern or CONTROL_CHARS.search(pattern):
            raise InputError("exclude pattern %r must be one non-empty line" % pattern)
    if not ON_CALENDAR.match(params.get("schedule") or ""):
        raise InputError("schedule %r is not a systemd OnCalendar expression" % params.get("schedule"))
    if not SUBSET.match(params.get("check_subset") or ""):
        raise InputError("check_subset %r is not N%% or n/t" % params.get("check_subset"))
    for line in params.get("host_keys") or []:
        if not HOST_KEY.match(line):
            raise InputError("host_keys: %r is not one known_hosts line (HOST TYPE KEY)" % line[:60])
    for name, value in (params.get("environment") or {}).items():
        if not ENV_NAME.match(name):
            raise InputError("environment: %r is not a variable name (RESTIC_PASSWORD* is the module's own)" % name)
        if CONTROL_CHARS.search(str(value)):
            raise InputError("environment: the value of %s must be one line" % name)
    for key in ("keep_daily", "keep_weekly", "keep_monthly"):
        if int(params.get(key) or 0) < 0:
            raise InputError("%s must be 0 or more" % key)
    if sftp_parts(repository) and not params.get("host_keys"):
        raise InputError("an SFTP repository needs host_keys: the backup host's known_hosts lines, so its key is pinned")


def configured(params):
    return bool(params.get("repository")) and bool(params.get("password"))


# --- what the host holds -------------------------------------------------------------


def sftp_command(repository):
    """The ssh command restic runs for an sftp: repository: the dedicated key, the pinned
    host key (never StrictHostKeyChecking=no), batch mode. None for other repositories."""
    parts = sftp_parts(repository)
    if not parts:
        return None
    return ("ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes "
            "-o UserKnownHostsFile=%s %s@%s -s sftp" % (SSH_KEY, KNOWN_HOSTS, parts["user"], parts["host"]))


def restic_options(repository):
    """restic's global options for this repository (argv, no secret)."""
    command = sftp_command(repository)
    return ["-o", "sftp.command=" + command] if command else []


def restic_environment(env_text):
    """{name: value} from the environment file; the repository and password file come
    from there, never from arguments."""
    env = {}
    for line in (env_text or "").splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name.strip()] = value
    return env


def render_env(repository, environment=None):
    lines = ["# Written by Yoroi (yoroi.baseline.backup). Read by yoroi-backup.service.",
             "RESTIC_REPOSITORY=%s" % repository,
             "RESTIC_PASSWORD_FILE=%s" % PASSWORD_FILE,
             "RESTIC_CACHE_DIR=%s" % CACHE_DIR]
    for name in sorted(environment or {}):
        lines.append("%s=%s" % (name, environment[name]))
    return "\n".join(lines) + "\n"


def render_lines(items):
    return "".join("%s\n" % item for item in items)


def forget_args(keep_daily, keep_weekly, keep_monthly):
    args = []
    for flag, value in (("--keep-daily", keep_daily), ("--keep-weekly", keep_weekly), ("--keep-monthly", keep_monthly)):
        if int(value or 0) > 0:
            args += [flag, str(int(value))]
    return args


def render_script(repository, keep_daily, keep_weekly, keep_monthly, check_subset, exclude):
    """The service's script: back up, apply the retention, check a sample of the data,
    and record the check in CHECK_STATE for BAK-002. Every value in it was checked
    against a pattern without spaces, quotes or shell metacharacters."""
    options = ""
    command = sftp_command(repository)
    if command:
        options = ' -o "sftp.command=%s"' % command
    forget = " ".join(forget_args(keep_daily, keep_weekly, keep_monthly)) or "--keep-last 1"
    excludes = " --exclude-file %s" % EXCLUDE_FILE if exclude else ""
    return """#!/bin/sh
# Written by Yoroi (yoroi.baseline.backup). Run by yoroi-backup.service, whose
# EnvironmentFile gives the repository and the password FILE (never the password).
set -u
umask 077
restic%(o)s backup --tag %(tag)s --files-from-verbatim %(paths)s%(ex)s
backup=$?
restic%(o)s forget --prune --tag %(tag)s %(forget)s
forget=$?
restic%(o)s check --read-data-subset=%(subset)s
check=$?
mkdir -p %(state_dir)s
printf '{"time": %%s, "backup": %%s, "forget": %%s, "check": %%s, "subset": "%%s"}\\n' \\
  "$(date +%%s)" "$backup" "$forget" "$check" "%(subset)s" > %(state)s.tmp && mv %(state)s.tmp %(state)s
# restic backup exits 3 when some files could not be read: the snapshot exists but is incomplete
[ "$backup" -eq 0 ] && [ "$forget" -eq 0 ] && [ "$check" -eq 0 ]
""" % {"o": options, "tag": TAG, "paths": PATHS_FILE, "ex": excludes, "forget": forget, "subset": check_subset,
       "state_dir": STATE_DIR, "state": CHECK_STATE}


def render_service():
    return """# Written by Yoroi (yoroi.baseline.backup).
[Unit]
Description=Yoroi backup with restic (back up, forget and prune, check a sample)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
EnvironmentFile=%s
ExecStart=%s
Nice=10
IOSchedulingClass=idle
PrivateTmp=true
""" % (ENV_FILE, SCRIPT)


def render_timer(schedule):
    return """# Written by Yoroi (yoroi.baseline.backup).
[Unit]
Description=Yoroi backup schedule

[Timer]
OnCalendar=%s
RandomizedDelaySec=15min
Persistent=true

[Install]
WantedBy=timers.target
""" % schedule


def wanted_files(params, public=False):
    """[(path, content, mode)] the host needs, in the order they are written. The
    password file (and the environment file when it holds credentials) is left out when
    ``public`` (what may be shown in a diff)."""
    repository = params["repository"]
    files = []
    if not public:
        files.append((PASSWORD_FILE, params["password"].rstrip("\n") + "\n", 0o600))
    if not (public and params.get("environment")):
        files.append((ENV_FILE, render_env(repository, params.get("environment")), 0o600))
    files.append((PATHS_FILE, render_lines(params["paths"]), 0o600))
    if params.get("exclude"):
        files.append((EXCLUDE_FILE, render_lines(params["exclude"]), 0o600))
    if sftp_parts(repository):
        files.append((KNOWN_HOSTS, render_lines(params["host_keys"]), 0o644))
    files += [
        (SCRIPT, render_script(repository, params["keep_daily"], params["keep_weekly"], params["keep_monthly"],
                               params["check_subset"], params.get("exclude")), 0o700),
        (SERVICE, render_service(), 0o644),
        (TIMER, render_timer(params["schedule"]), 0o644),
    ]
    return files


# --- restic's outputs ----------------------------------------------------------------

RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(text):
    """Seconds since the epoch of a restic time (RFC 3339, nanoseconds, any offset)."""
    match = RFC3339.match(text or "")
    if not match:
        raise ValueError("not an RFC 3339 time: %r" % text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if fraction:
        seconds += float("0." + fraction)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


def parse_snapshots(text):
    """[{id, time, paths, tags, hostname}] from ``restic snapshots --json``, newest first."""
    data = json.loads(text or "[]") or []
    snapshots = []
    for item in data:
        snapshots.append({
            "id": item.get("short_id") or (item.get("id") or "")[:8],
            "time": parse_time(item.get("time")),
            "paths": list(item.get("paths") or []),
            "tags": list(item.get("tags") or []),
            "hostname": item.get("hostname") or "",
        })
    return sorted(snapshots, key=lambda item: item["time"], reverse=True)


def repository_error(text):
    """What a failed restic command's stderr says, in one category:
    ``missing`` (no repository there yet), ``password``, ``locked`` or ``other``."""
    text = text or ""
    if "unable to open config file" in text or "Is there a repository at the following location" in text:
        return "missing"
    if "wrong password or no key found" in text:
        return "password"
    if "repository is already locked" in text:
        return "locked"
    return "other"


def last_line(text, limit=300):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.startswith("[")]
    return (lines[-1] if lines else "")[:limit]


def parse_check(rc, out, err):
    """{ok, summary} of ``restic check``: ok only with exit 0 and "no errors were found"."""
    ok = rc == 0 and "no errors were found" in (out or "")
    problems = [line.strip() for line in (err or "").splitlines()
                if line.strip() and not line.startswith(("using temporary cache", "Fatal: repository contains errors"))]
    if ok:
        summary = "no errors were found"
        read = re.search(r"^read (.*data.*)$", out or "", re.M)
        if read:
            summary += " (%s)" % read.group(1)
    else:
        summary = "; ".join(problems[:3]) or last_line(err) or last_line(out) or "restic check exited %s" % rc
    return {"ok": ok, "summary": summary[:500]}


def parse_check_state(text):
    """The last check the service (or a drill) recorded: {time, check, ...} or None."""
    try:
        state = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(state, dict) or not isinstance(state.get("time"), (int, float)):
        return None
    return state


def render_check_state(now, ok, subset, summary, source):
    return json.dumps({"time": int(now), "check": 0 if ok else 1, "subset": subset, "summary": summary,
                       "source": source}, sort_keys=True) + "\n"


def parse_ls(text):
    """[{path, size, mtime}] of the regular files in ``restic ls --json`` lines."""
    files = []
    for line in (text or "").splitlines():
        try:
            node = json.loads(line)
        except ValueError:
            continue
        if node.get("struct_type") == "node" and node.get("type") == "file":
            files.append({"path": node["path"], "size": int(node.get("size") or 0), "mtime": parse_time(node["mtime"])})
    return files


# --- the controls ---------------------------------------------------------------------


def hours(seconds):
    return "%.1f h" % (seconds / 3600.0)


def fresh_snapshots(snapshots, paths, now, max_age_hours):
    """{path: newest snapshot that holds it, or None} and whether each is young enough."""
    newest = {}
    for path in paths:
        holding = [snap for snap in snapshots if path in snap["paths"]]
        newest[path] = holding[0] if holding else None
    limit = max_age_hours * 3600
    return dict((path, (snap, snap is not None and now - snap["time"] <= limit)) for path, snap in newest.items())


def snapshot_findings(paths, repo, now, max_age_hours, status_of):
    """BAK-001: one finding per protected path. ``repo``: {state: ok|missing|...,
    snapshots, error}; ``status_of(ok_before_key, ok)`` folds the status."""
    expected = "a snapshot younger than %d h holds the path" % max_age_hours
    findings = []
    if repo.get("state") != "ok":
        why = repo.get("error") or "the repository could not be read"
        for path in paths:
            findings.append(finding("BAK-001", status_of(path, False), expected, why, "restic snapshots --json",
                                    subject=path))
        return findings
    for path, (snap, young) in fresh_snapshots(repo["snapshots"], paths, now, max_age_hours).items():
        if snap is None:
            actual = "no snapshot holds it"
        else:
            actual = "latest snapshot %s at %s, %s old" % (snap["id"], iso(snap["time"]), hours(now - snap["time"]))
        findings.append(finding("BAK-001", status_of(path, young), expected, actual,
                                "restic snapshots --json: %d snapshot(s)" % len(repo["snapshots"]), subject=path))
    return findings


def check_state_ok(state, now, max_age_hours):
    """(ok, actual) of BAK-002 from the recorded check."""
    if state is None:
        return False, "no repository check has been recorded (%s)" % CHECK_STATE
    age = now - state["time"]
    summary = state.get("summary") or ""
    when = "%s, %s ago (%s)" % (iso(state["time"]), hours(age), state.get("source") or "yoroi-backup.service")
    if state.get("check") != 0:
        return False, "the last check failed at %s%s" % (when, ": " + summary if summary else "")
    if age > max_age_hours * 3600:
        return False, "the last check passed at %s: older than %d h" % (when, max_age_hours)
    return True, "passed at %s, data subset %s" % (when, state.get("subset") or "?")


def timer_ok(enabled, active):
    return enabled == "enabled" and active == "active"


def password_file_ok(info, matches):
    """(ok, actual) of BAK-004. ``info``: {exists, uid, mode, dir_mode} of the file and its
    directory; ``matches``: the file holds the configured password (never shown)."""
    if not info.get("exists"):
        return False, "%s does not exist" % PASSWORD_FILE
    if info.get("link"):
        return False, "%s is a symbolic link" % PASSWORD_FILE
    problems = []
    if info.get("uid") != 0:
        problems.append("owned by uid %s" % info.get("uid"))
    if info.get("mode") != 0o600:
        problems.append("mode %04o" % info.get("mode"))
    if info.get("dir_mode") is not None and info["dir_mode"] & 0o077:
        problems.append("%s has mode %04o" % (CONFIG_DIR, info["dir_mode"]))
    if not matches:
        problems.append("does not hold the configured password")
    if problems:
        return False, "%s: %s" % (PASSWORD_FILE, ", ".join(problems))
    return True, "%s: root, 0600, in a 0700 directory; holds the configured password" % PASSWORD_FILE


def not_configured_findings():
    return [finding(control, FAIL, expected, NOT_CONFIGURED,
                    "yoroi_backup_repository and yoroi_backup_password (from a vault) are both needed; nothing was changed")
            for control, expected in sorted(CONTROLS.items())]


def iso(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# --- the drill ------------------------------------------------------------------------


def open_nofollow(path, dir_fd_opener=os.open):
    """A read-only descriptor of ``path``, opened one component at a time with O_NOFOLLOW:
    a symbolic link anywhere on the way (a user's directory with a link swapped in) is
    never followed. Raises OSError (ELOOP/ENOTDIR for a link, ENOENT when missing)."""
    parts = [part for part in path.split("/") if part]
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open("/", flags_dir)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags_dir, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), dir_fd=fd)
    finally:
        os.close(fd)


def hash_fd(fd):
    """SHA-256 of an open file, read in chunks (huge and sparse files never sit in memory)."""
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb", closefd=True) as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


MATCH = "match"
CHANGED = "changed since snapshot"
DELETED = "restorable but deleted"
CORRUPT = "mismatch"
UNREADABLE = "not restored"


def classify(restored, live, snapshot_time, restored_hash=None, live_hash=None):
    """What one file's comparison says. ``restored``: {size, mtime} of the restored file
    (None when restic could not restore it); ``live``: {size, mtime, regular} by lstat, or
    None when the live file is gone. A live file modified after the snapshot, or whose
    size or mtime differ from the snapshot's, is ``changed since snapshot`` (not
    corruption); a live file that is not a regular file any more (a link swapped in) too.
    None: both are there and unchanged, so the hashes decide."""
    if restored is None:
        return UNREADABLE
    if live is None:
        return DELETED
    if not live.get("regular"):
        return CHANGED
    if live["size"] != restored["size"] or int(live["mtime"]) != int(restored["mtime"]) or live["mtime"] > snapshot_time:
        return CHANGED
    if restored_hash is None or live_hash is None:
        return None  # both there and unchanged: only the hashes can tell
    return MATCH if restored_hash == live_hash else CORRUPT


def live_info(path):
    """{size, mtime, regular} of the live file reached without following any link, or
    None when it is gone. A link on the way counts as "not a regular file"."""
    try:
        fd = open_nofollow(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT,):
            return None
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EACCES):
            return {"size": -1, "mtime": 0, "regular": False}
        raise
    try:
        st = os.fstat(fd)
        return {"size": st.st_size, "mtime": st.st_mtime, "regular": stat.S_ISREG(st.st_mode)}
    finally:
        os.close(fd)


def compare_file(live_path, restored_path, snapshot_time, restored_mtime=None):
    """The outcome for one file; nothing followed through a link, hashes streamed.
    ``restored_mtime``: the file's mtime in the snapshot (``restic ls``), when the restored
    copy does not carry it (``restic dump``)."""
    restored = None
    try:
        rfd = os.open(restored_path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        rfd = None
    if rfd is not None:
        st = os.fstat(rfd)
        restored = {"size": st.st_size, "mtime": st.st_mtime if restored_mtime is None else restored_mtime}
    live = live_info(live_path)
    outcome = classify(restored, live, snapshot_time)
    if outcome is not None:
        if rfd is not None:
            os.close(rfd)
        return outcome
    restored_hash = hash_fd(rfd)
    try:
        live_hash = hash_fd(open_nofollow(live_path))
    except OSError:
        return CHANGED
    return classify(restored, live, snapshot_time, restored_hash, live_hash)


def tally(outcomes):
    """{outcome: [paths]} in a stable order."""
    result = dict((name, []) for name in (MATCH, CHANGED, DELETED, CORRUPT, UNREADABLE))
    for path, outcome in sorted(outcomes.items()):
        result[outcome].append(path)
    return result


def drill_findings(check, snapshot, outcomes, restore, now, max_age_hours, seconds):
    """DRL-001..DRL-003. ``check``: {ok, summary} or None when no check ran; ``snapshot``:
    the latest snapshot or None; ``outcomes``: {path: outcome}; ``restore``: {ok, error,
    seconds, mode}; ``seconds``: the whole drill's duration (returned in every finding)."""
    findings = []
    if check is None:
        findings.append(finding("DRL-001", SKIPPED, DRILL_CONTROLS["DRL-001"], "no check ran", "check_subset is off"))
    else:
        findings.append(finding("DRL-001", PASS if check["ok"] else FAIL, DRILL_CONTROLS["DRL-001"],
                                check["summary"], "restic check --read-data-subset=%s --no-cache" % check.get("subset", "")))
    if snapshot is None:
        findings.append(finding("DRL-002", FAIL, DRILL_CONTROLS["DRL-002"], restore.get("error") or "no snapshot to restore",
                                "restic snapshots --json"))
        findings.append(finding("DRL-003", FAIL, DRILL_CONTROLS["DRL-003"], "no snapshot", "restic snapshots --json"))
    else:
        groups = tally(outcomes)
        counts = ", ".join("%d %s" % (len(paths), name) for name, paths in groups.items())
        bad = groups[CORRUPT] + groups[UNREADABLE]
        ok = restore.get("ok") and not bad and bool(outcomes)
        actual = "%s in %.1f s: %s" % ("restored" if restore.get("ok") else "restore failed", restore.get("seconds", 0.0),
                                       counts or "no file")
        if restore.get("error"):
            actual += "; restic: %s" % restore["error"]
        evidence = "snapshot %s (%s), %s into a private scratch directory, SHA-256 compared" % (
            snapshot["id"], iso(snapshot["time"]), restore.get("mode", "whole snapshot"))
        for name in (CHANGED, DELETED):
            if groups[name]:
                evidence += "; %s: %s" % (name, ", ".join(json.dumps(p) for p in groups[name][:10]))
        findings.append(finding("DRL-002", PASS if ok else FAIL, DRILL_CONTROLS["DRL-002"], actual, evidence))
        for path in bad[:20]:
            findings.append(finding("DRL-002", FAIL, "the restored file equals the live file, unchanged since the snapshot",
                                    "content differs (corruption)" if path in groups[CORRUPT] else "could not be restored",
                                    "snapshot %s" % snapshot["id"], subject=path))
        age = now - snapshot["time"]
        findings.append(finding("DRL-003", PASS if age <= max_age_hours * 3600 else FAIL, DRILL_CONTROLS["DRL-003"],
                                "snapshot %s at %s, %s old" % (snapshot["id"], iso(snapshot["time"]), hours(age)),
                                "maximum age %d h" % max_age_hours))
    for item in findings:
        item["seconds"] = round(seconds, 2)
    return findings


def run_child(argv, env, stdout=subprocess.PIPE):
    """(rc, stdout, stderr) of a restic that writes into the drill's scratch directory.

    Not ``module.run_command``: that one keeps all output in memory (``restic dump`` of a
    large file goes to a file here) and, when the drill is interrupted, would leave restic
    running. Here restic is killed and waited for before the scratch directory is
    removed, so nothing is written there afterwards."""
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=dict(os.environ, **env))
    try:
        out, err = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, (out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace")
