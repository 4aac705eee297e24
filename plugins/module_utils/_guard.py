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
    timer ``yoroi-guard-<token>.timer``, firing after ``timeout`` seconds, and installs the
    boot unit (once, see below). When it fires, the host puts every file back (deleting
    those that did not exist), runs ``systemctl reload-or-restart`` on each unit and marks
    the change ``rolled_back`` (``restore_failed`` when anything of that failed) - with
    nobody logged in, and whatever the controller does.

``confirm(module, token) -> {"token", "state", "previous", ...}``
    Call after a FRESH login of the automation account succeeded. Marks the change
    ``confirmed`` and stops the timer; the backups stay in the guard directory. When
    the timer had already fired, the state stays ``rolled_back`` and ``previous`` says so.

``rollback(module, token) -> {"token", "state", "previous", ...}``
    Restore and reload now (also after a confirmation, or again after a failed restore),
    then stop the timer. Calling it for a change already rolled back changes nothing. A
    restore that fails returns ``state`` ``restore_failed`` and ``failed``.

``read_status(token)`` reads a guard's manifest and state without changing anything.

``leftover(root, now)`` lists the guards nothing resolved: still armed past their
deadline, or whose restore failed. ``change_guard state=audit`` reports them (GRD-002).

``prune(root, keep_days)`` removes finished guards (confirmed or rolled back; never one
whose restore failed) whose
state is older than ``keep_days``; arm() calls it with KEEP_DAYS (30). The copies hold
files such as /etc/shadow, old password hashes included: they are kept for a manual
look back, not for ever. An armed guard is never pruned.

States live in ``<dir>/state`` (``armed``, ``confirmed``, ``rolled_back``,
``restore_failed``). ``restore_failed`` means a file could not be put back or a unit not
reloaded: ``<dir>/failed`` lists them (``file PATH`` / ``unit NAME``), and every reader
reports it as an error, never as a rollback.

Locks: the restore script takes the host-wide lock (``_lock.HOST_LOCK``, the one every
changing module run holds) and then ``<dir>/lock``; confirm() takes ``<dir>/lock``. A
timer firing while a module run changes things waits for that run, and a timer firing
while a confirmation runs can never half-restore. Never call rollback() while holding
the host lock: the restore script it runs takes it.

Reboots: the transient timer does not survive one, so arm() also installs (once) the
persistent unit ``yoroi-guard-boot.service`` that runs, at every boot, the restore script
of each guard still armed. The script skips a confirmed guard by itself, under the lock,
so a change confirmed normally is never restored at boot.
The module ``yoroi.baseline.change_guard`` exposes these calls to roles.
"""

from __future__ import annotations

import calendar
import fcntl
import json
import os
import re
import secrets
import shlex
import shutil
import time

from ansible_collections.yoroi.baseline.plugins.module_utils import _lock

GUARD_ROOT = "/var/lib/yoroi/guard"
UNIT_PREFIX = "yoroi-guard-"
ARMED = "armed"
CONFIRMED = "confirmed"
ROLLED_BACK = "rolled_back"
RESTORE_FAILED = "restore_failed"
STATES = (ARMED, CONFIRMED, ROLLED_BACK, RESTORE_FAILED)
TOKEN_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
# A guard root goes into a systemd unit's command line: no quotes, spaces, % or $.
SAFE_ROOT_RE = re.compile(r"^/[0-9A-Za-z._/-]+$")
KEEP_DAYS = 30
MANIFEST = "manifest.json"
SCRIPT = "restore.sh"
FAILED = "failed"
# The restore waits this long for a module run holding the host lock, then restores
# anyway: a stuck run must not keep a host locked out for ever.
HOST_LOCK_WAIT = 600
# An armed guard is a leftover this long after its deadline (its timer had time to fire
# and the restore time to finish, the wait for the host lock included).
LEFTOVER_GRACE = HOST_LOCK_WAIT + 60
BOOT_UNIT = "yoroi-guard-boot.service"
BOOT_UNIT_DIR = "/etc/systemd/system"
BOOT_TARGET = "multi-user.target"
# Connections whose fresh login goes through sshd and PAM ("smart" resolves to ssh).
SSHD_CONNECTIONS = frozenset(
    prefix + name
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("ssh", "paramiko", "paramiko_ssh", "smart")
)


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


def render_restore_script(directory, entries, reload_units, host_lock=None):
    """The POSIX shell script the timer (and, after a reboot, the boot unit) runs.

    ``entries`` is a list of ``{"path", "backup"}`` where ``backup`` is a file name inside
    ``directory`` or None when the path did not exist before the change. The script does
    nothing once the change is confirmed (unless given ``--force``), already rolled back,
    or left ``restore_failed`` (``--force`` tries again). Its first argument, ``--force``
    or ``--boot``, is also recorded as who restored (default: the timer); ``--locked``
    says the caller (a module rolling back its own change) already holds the host lock,
    which the script would otherwise wait for, on another descriptor, in vain. A file that
    cannot be put back, or a unit that cannot be reloaded, makes the state
    ``restore_failed`` and is listed in ``<dir>/failed``.
    """
    q = shlex.quote
    host_lock = host_lock or _lock.HOST_LOCK
    lines = [
        "#!/bin/sh",
        "# Yoroi lockout guard: put back the files a change replaced and reload the units,",
        "# unless the change was confirmed by a fresh login first. Run with --force to",
        "# restore a confirmed change (or retry a failed restore) by hand.",
        "set -u",
        "umask 077",
        "dir=%s" % q(directory),
        "host_lock=%s" % q(host_lock),
        "by=timer; locked=0",
        'for arg in "$@"; do case "$arg" in --force) by=force ;; --boot) by=boot ;; --locked) locked=1 ;; esac; done',
        "# The host-wide lock first (as every changing module run takes it), then this guard's.",
        'if [ "$locked" = 0 ]; then',
        '  exec 8<>"$host_lock"',
        "  if ! flock -w %d 8; then" % HOST_LOCK_WAIT,
        '    echo "yoroi guard: host lock $host_lock still held after %d s ($(cat "$host_lock")); restoring anyway" >&2'
        % HOST_LOCK_WAIT,
        "  fi",
        "fi",
        'exec 9>>"$dir/lock"',
        "flock 9",
        'state=$(cat "$dir/state" 2>/dev/null || echo armed)',
        'if [ "$state" = %s ]; then exit 0; fi' % ROLLED_BACK,
        'if [ "$state" != %s ] && [ "$by" != force ]; then exit 0; fi' % ARMED,
        'rm -f "$dir/%s"' % FAILED,
        "rc=0",
        "failed() { printf '%%s %%s\\n' \"$1\" \"$2\" >> \"$dir/%s\"; rc=1; }" % FAILED,
    ]
    for entry in entries:
        path = entry["path"]
        if entry.get("backup"):
            tmp = path + ".yoroi-guard"
            # mv -T: a directory found where the file was is a failure, not a target.
            lines.append(
                'cp -p "$dir"/%s %s && mv -fT %s %s || failed file %s'
                % (q(entry["backup"]), q(tmp), q(tmp), q(path), q(path))
            )
        else:
            lines.append("rm -f %s || failed file %s" % (q(path), q(path)))
    for unit in reload_units:
        lines.append("systemctl reload-or-restart %s || failed unit %s" % (q(unit), q(unit)))
    lines += [
        'if [ "$rc" = 0 ]; then new=%s; else new=%s; fi' % (ROLLED_BACK, RESTORE_FAILED),
        'date -u +%Y-%m-%dT%H:%M:%SZ > "$dir/${new}_at"',
        'printf "%s\\n" "$by" > "$dir/restored_by"',
        'printf "%s\\n" "$new" > "$dir/state.tmp" && mv -f "$dir/state.tmp" "$dir/state"',
        "exit $rc",
    ]
    return "\n".join(lines) + "\n"


def render_boot_unit(root=GUARD_ROOT):
    """The persistent unit that restores, at boot, every guard a reboot left armed.

    Why a boot unit and not a persistent timer at the old deadline: a reboot is the usual
    remote fix for a lockout, and nothing can confirm a guard across it (the run that
    armed it lost its connection), so waiting out the rest of the timeout would only keep
    the host locked out longer. One shared unit, installed once, needs no systemctl call
    when a guard is confirmed; the restore script itself skips confirmed guards under the
    lock. It is not ordered before the guarded services (ssh, nftables): the script
    reloads them, and a unit ordered before them that waited on their reload would
    deadlock the boot; they may run for a moment with the change, then are restored.
    """
    if not SAFE_ROOT_RE.match(root):
        raise GuardError("guard root %r cannot be written into a systemd unit" % (root,))
    script = (
        'rc=0; for d in "%s"/*/; do '
        '[ "$$(cat "$${d}state" 2>/dev/null)" = %s ] || continue; '
        '/bin/sh "$${d}%s" --boot || rc=1; done; exit $$rc'
    ) % (root.rstrip("/"), ARMED, SCRIPT)
    return "\n".join([
        "# Installed by the Yoroi lockout guard (yoroi.baseline.change_guard).",
        "[Unit]",
        "Description=Yoroi lockout guard: restore the changes a reboot left unconfirmed",
        "ConditionPathIsDirectory=%s" % root,
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=/bin/sh -c '%s'" % script,
        "",
        "[Install]",
        "WantedBy=%s" % BOOT_TARGET,
        "",
    ])


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
    for name in ("%s_at" % ROLLED_BACK, "%s_at" % CONFIRMED, "%s_at" % RESTORE_FAILED, "restored_by"):
        value = _read(os.path.join(directory, name))
        if value:
            data[name] = value.strip()
    data["failed"] = failed_items(_read(os.path.join(directory, FAILED), "") if data["state"] == RESTORE_FAILED else "")
    return data


def failed_items(text):
    """``<dir>/failed`` as [{"kind": "file"|"unit", "name"}], in the order they failed."""
    items = []
    for line in (text or "").splitlines():
        kind, _sep, name = line.partition(" ")
        if name:
            items.append({"kind": kind, "name": name})
    return items


def deadline(status):
    """When the guard's timer was due (seconds since the epoch), from its manifest."""
    created = calendar.timegm(time.strptime(status["created"], "%Y-%m-%dT%H:%M:%SZ"))
    return created + int(status.get("timeout", 0))


def leftover(root=GUARD_ROOT, now=None, grace=LEFTOVER_GRACE):
    """The guards nothing resolved, as read_status() dicts (oldest first): armed more than
    ``grace`` seconds past their deadline (their timer was lost, as a reboot did before
    the boot unit), or ``restore_failed``. A guard armed by a run still in progress is
    not one. Reads only."""
    now = time.time() if now is None else now
    found = []
    if not os.path.isdir(root):
        return found
    for token in sorted(os.listdir(root)):
        if not TOKEN_RE.match(token) or not os.path.exists(os.path.join(root, token, MANIFEST)):
            continue
        status = read_status(token, root)
        if status["state"] == RESTORE_FAILED or (
                status["state"] == ARMED and now > deadline(status) + grace):
            found.append(status)
    return sorted(found, key=lambda status: (status["created"], status["token"]))


def proves_access(connection):
    """Whether a fresh login over this Ansible connection goes through sshd and PAM."""
    return (connection or "ssh") in SSHD_CONNECTIONS


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


def install_boot_unit(module, root=GUARD_ROOT, unit_dir=None):
    """Write and enable the boot unit unless it is already in place; True when it was."""
    unit_dir = unit_dir or BOOT_UNIT_DIR
    path = os.path.join(unit_dir, BOOT_UNIT)
    text = render_boot_unit(root)
    wanted = os.path.join(unit_dir, BOOT_TARGET + ".wants", BOOT_UNIT)
    if _read(path) == text and os.path.lexists(wanted):
        return False
    _write(path, text, 0o644)
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = _run(module, [systemctl, "enable", BOOT_UNIT])
    if rc != 0:
        raise GuardError("systemctl could not enable %s: %s" % (BOOT_UNIT, (err or out).strip()))
    return True


def arm(module, paths, reload_units, timeout, root=GUARD_ROOT):
    """Back up ``paths`` and schedule their restore in ``timeout`` seconds; see above."""
    if int(timeout) < 10:
        raise GuardError("guard timeout must be at least 10 seconds, got %s" % timeout)
    prune(root)
    token = new_token()
    directory = guard_dir(token, root)
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    # the restore script opens the host lock; a shell exits when that open fails
    os.makedirs(os.path.dirname(_lock.HOST_LOCK), mode=0o755, exist_ok=True)
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
    try:
        install_boot_unit(module, root)
    except (GuardError, OSError):
        shutil.rmtree(directory, ignore_errors=True)
        raise
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


def rollback(module, token, root=GUARD_ROOT, lock_held=False):
    """Restore the files and reload the units now; see the module docstring.

    ``lock_held``: the caller holds the host lock (a module undoing its own change inside
    ``Concern.changing``); the script must not wait for it.
    """
    status = read_status(token, root)
    previous = status["state"]
    if previous != ROLLED_BACK:
        argv = ["/bin/sh", os.path.join(status["dir"], SCRIPT), "--force"] + (["--locked"] if lock_held else [])
        rc, out, err = _run(module, argv)
        if rc != 0 and read_status(token, root)["state"] != RESTORE_FAILED:
            raise GuardError("restore script of guard %s failed (rc=%d): %s" % (token, rc, (err or out).strip()))
    _stop_timer(module, token)
    result = read_status(token, root)
    result["previous"] = previous
    return result
