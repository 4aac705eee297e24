# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lockout guard: a change that can cut access undoes itself unless it is confirmed.

Shared by every role whose change can lock the automation out (ssh, mfa, firewall).
The API is three calls, each taking the running AnsibleModule:

``arm(module, paths, reload_units, timeout) -> {"token", "unit", "dir"}``
    Call BEFORE the change. Copies every path that exists (owner, mode and times kept)
    to ``/var/lib/yoroi/guard/<token>/`` (0700), remembers the paths that did not exist,
    writes ``restore.sh`` there and schedules it with ``systemd-run`` as the transient
    timer ``yoroi-guard-<token>.timer``, firing after ``timeout`` seconds. When it fires,
    the host puts every file back (deleting those that did not exist), runs
    ``systemctl reload-or-restart`` on each unit and marks the change ``rolled_back``
    - with nobody logged in, and whatever the controller does.

``confirm(module, token) -> {"token", "state", "previous", ...}``
    Call after a FRESH login of the automation account succeeded. Marks the change
    ``confirmed`` and stops the timer; the backups stay in the guard directory. When
    the timer had already fired, the state stays ``rolled_back`` and ``previous`` says so.

``rollback(module, token) -> {"token", "state", "previous", ...}``
    Restore and reload now (also after a confirmation), then stop the timer. Calling it
    for a change already rolled back changes nothing.

``read_status(token)`` reads a guard's manifest and state without changing anything.

``prune(root, keep_days)`` removes finished guards (confirmed or rolled back) whose
state is older than ``keep_days``; arm() calls it with KEEP_DAYS (30). The copies hold
files such as /etc/shadow, old password hashes included: they are kept for a manual
look back, not for ever. An armed guard is never pruned.

States live in ``<dir>/state`` (``armed``, ``confirmed``, ``rolled_back``); the restore
script and confirm() take the same ``flock`` on ``<dir>/lock``, so a timer firing while a
confirmation runs can never half-restore. The timer is transient: it does not survive a
reboot of the host before confirmation (the files then stay as changed; the backups and
``restore.sh`` remain in the guard directory for a manual ``sh restore.sh --force``).
The module ``yoroi.baseline.change_guard`` exposes these calls to roles.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shlex
import shutil
import time

GUARD_ROOT = "/var/lib/yoroi/guard"
UNIT_PREFIX = "yoroi-guard-"
ARMED = "armed"
CONFIRMED = "confirmed"
ROLLED_BACK = "rolled_back"
STATES = (ARMED, CONFIRMED, ROLLED_BACK)
TOKEN_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
KEEP_DAYS = 30
MANIFEST = "manifest.json"
SCRIPT = "restore.sh"


class GuardError(Exception):
    """A guard could not be armed, confirmed or rolled back; the message says why."""


# --- pure parts ------------------------------------------------------------------------


def new_token(now=None):
    """A token that sorts by time and cannot be guessed: 20261127T101500Z-1a2b3c4d."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return "%s-%s" % (stamp, secrets.token_hex(4))


def check_token(token):
    if not token or not TOKEN_RE.match(token):
        raise GuardError("invalid guard token %r" % (token,))
    return token


def unit_name(token):
    """The transient unit's name without suffix (``.timer`` and ``.service`` exist)."""
    return UNIT_PREFIX + check_token(token)


def guard_dir(token, root=GUARD_ROOT):
    return os.path.join(root, check_token(token))


def render_restore_script(directory, entries, reload_units):
    """The POSIX shell script the timer runs.

    ``entries`` is a list of ``{"path", "backup"}`` where ``backup`` is a file name inside
    ``directory`` or None when the path did not exist before the change. The script does
    nothing once the change is confirmed (unless given ``--force``) or already rolled back.
    """
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# Yoroi lockout guard: put back the files a change replaced and reload the units,",
        "# unless the change was confirmed by a fresh login first. Run with --force to",
        "# restore a confirmed change by hand.",
        "set -u",
        "dir=%s" % q(directory),
        'force="${1:-}"',
        'exec 9>>"$dir/lock"',
        "flock 9",
        'state=$(cat "$dir/state" 2>/dev/null || echo armed)',
        'if [ "$state" = %s ]; then exit 0; fi' % ROLLED_BACK,
        'if [ "$state" = %s ] && [ "$force" != --force ]; then exit 0; fi' % CONFIRMED,
        "rc=0",
    ]
    for entry in entries:
        path = entry["path"]
        if entry.get("backup"):
            tmp = path + ".yoroi-guard"
            lines.append(
                'cp -p "$dir"/%s %s && mv -f %s %s || rc=1'
                % (q(entry["backup"]), q(tmp), q(tmp), q(path))
            )
        else:
            lines.append("rm -f %s || rc=1" % q(path))
    lines += [
        'date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ > "$dir/%s_at"' % ROLLED_BACK,
        'printf "%%s\\n" %s > "$dir/state.tmp" && mv -f "$dir/state.tmp" "$dir/state"' % ROLLED_BACK,
    ]
    for unit in reload_units:
        lines.append("systemctl reload-or-restart %s || rc=1" % q(unit))
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"


def systemd_run_argv(systemd_run, token, script_path, timeout):
    """argv that schedules the restore script as a transient timer + service."""
    name = unit_name(token)
    return [
        systemd_run,
        "--unit=%s" % name,
        "--description=Yoroi lockout guard %s: restore unless confirmed" % token,
        "--on-active=%ds" % int(timeout),
        "--timer-property=AccuracySec=1s",
        "--property=Type=oneshot",
        "/bin/sh",
        script_path,
    ]


# --- reading and writing a guard directory -----------------------------------------


def _write(path, text, mode=0o600):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.rename(tmp, path)


def _read(path, default=None):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return default


def read_status(token, root=GUARD_ROOT):
    """{"token", "dir", "unit", "state", "paths", "units", "created", "rolled_back_at", ...}."""
    directory = guard_dir(token, root)
    manifest = _read(os.path.join(directory, MANIFEST))
    if manifest is None:
        raise GuardError("no lockout guard %s (no %s)" % (token, os.path.join(directory, MANIFEST)))
    data = json.loads(manifest)
    data["dir"] = directory
    data["unit"] = unit_name(token)
    data["state"] = (_read(os.path.join(directory, "state"), ARMED) or ARMED).strip()
    for stamp in ("%s_at" % ROLLED_BACK, "%s_at" % CONFIRMED):
        value = _read(os.path.join(directory, stamp))
        if value:
            data[stamp] = value.strip()
    return data


def _locked(directory):
    handle = open(os.path.join(directory, "lock"), "a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _run(module, argv):
    return module.run_command(argv, environ_update={"LC_ALL": "C"})


def _stop_timer(module, token):
    systemctl = module.get_bin_path("systemctl", required=True)
    # A timer that already fired or was stopped is no longer loaded: not an error.
    _run(module, [systemctl, "stop", unit_name(token) + ".timer"])


# --- the API ---------------------------------------------------------------------------


def prune(root=GUARD_ROOT, keep_days=KEEP_DAYS, now=None):
    """Remove finished guard directories older than ``keep_days``; return their tokens."""
    now = time.time() if now is None else now
    removed = []
    if not os.path.isdir(root):
        return removed
    for token in sorted(os.listdir(root)):
        if not TOKEN_RE.match(token):
            continue
        state_file = os.path.join(root, token, "state")
        state = (_read(state_file, "") or "").strip()
        if state not in (CONFIRMED, ROLLED_BACK):
            continue
        if now - os.stat(state_file).st_mtime > keep_days * 86400:
            shutil.rmtree(os.path.join(root, token), ignore_errors=True)
            removed.append(token)
    return removed



def arm(module, paths, reload_units, timeout, root=GUARD_ROOT):
    """Back up ``paths`` and schedule their restore in ``timeout`` seconds; see above."""
    if int(timeout) < 10:
        raise GuardError("guard timeout must be at least 10 seconds, got %s" % timeout)
    prune(root)
    token = new_token()
    directory = guard_dir(token, root)
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    os.mkdir(directory, 0o700)
    entries = []
    for index, path in enumerate(paths):
        path = os.path.abspath(path)
        if os.path.lexists(path):
            backup = "file-%d" % index
            target = os.path.join(directory, backup)
            shutil.copy2(path, target)
            stat = os.stat(path)
            os.chown(target, stat.st_uid, stat.st_gid)
            entries.append({"path": path, "backup": backup, "existed": True})
        else:
            entries.append({"path": path, "backup": None, "existed": False})
    script_path = os.path.join(directory, SCRIPT)
    _write(script_path, render_restore_script(directory, entries, reload_units), 0o700)
    _write(os.path.join(directory, "state"), ARMED + "\n")
    manifest = {
        "token": token,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "timeout": int(timeout),
        "paths": entries,
        "units": list(reload_units),
    }
    _write(os.path.join(directory, MANIFEST), json.dumps(manifest, indent=2) + "\n")
    systemd_run = module.get_bin_path("systemd-run", required=True)
    rc, out, err = _run(module, systemd_run_argv(systemd_run, token, script_path, timeout))
    if rc != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise GuardError("systemd-run could not schedule the guard timer: %s" % (err or out).strip())
    return {"token": token, "unit": unit_name(token), "dir": directory}


def confirm(module, token, root=GUARD_ROOT):
    """Mark the change confirmed and stop the timer; see the module docstring."""
    status = read_status(token, root)
    with _locked(status["dir"]) as _lock:
        previous = (_read(os.path.join(status["dir"], "state"), ARMED) or ARMED).strip()
        if previous == ARMED:
            _write(os.path.join(status["dir"], "%s_at" % CONFIRMED), time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
            _write(os.path.join(status["dir"], "state"), CONFIRMED + "\n")
    _stop_timer(module, token)
    result = read_status(token, root)
    result["previous"] = previous
    return result


def rollback(module, token, root=GUARD_ROOT):
    """Restore the files and reload the units now; see the module docstring."""
    status = read_status(token, root)
    previous = status["state"]
    if previous != ROLLED_BACK:
        rc, out, err = _run(module, ["/bin/sh", os.path.join(status["dir"], SCRIPT), "--force"])
        if rc != 0:
            raise GuardError("restore script of guard %s failed (rc=%d): %s" % (token, rc, (err or out).strip()))
    _stop_timer(module, token)
    result = read_status(token, root)
    result["previous"] = previous
    return result
