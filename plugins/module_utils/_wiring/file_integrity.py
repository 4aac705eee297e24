# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.file_integrity: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/file_integrity.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import stat
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _file_integrity as fim
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils import _packages

# Tests point ROOT at a tree of their own; on a host it is "".
ROOT = ""
ENV = {"LC_ALL": "C"}


def host(path):
    return ROOT + path


def lstat(path):
    try:
        info = os.lstat(host(path))
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        kind = "link"
    elif stat.S_ISREG(info.st_mode):
        kind = "file"
    elif stat.S_ISDIR(info.st_mode):
        kind = "dir"
    else:
        kind = "other"
    return fim.Stat(kind, info.st_uid, stat.S_IMODE(info.st_mode), info.st_mtime)


def read_regular(path, info):
    """The text of a regular file (a symlink is never read through)."""
    return _files.read_text(host(path)) if info is not None and info.kind == "file" else None


# (rc, output) of a host tool, or (None, why) when it is not installed (tests replace it)
run = _concern.run_tool


def read_state(module):
    policy_stat = lstat(fim.POLICY)
    db_dir_stat = lstat(fim.DB_DIR)
    report_stat = lstat(fim.REPORT)
    trusted_dir = db_dir_stat is not None and not fim.distrust(db_dir_stat, "dir", 0o077)
    units = {}
    rc, out = run(module, ["systemctl", "show", fim.TIMER_NAME, fim.SERVICE_NAME,
                           "--property=Id,UnitFileState,ActiveState,Result,ExecMainStatus"])
    if rc == 0:
        units = fim.parse_systemctl_show(out)
    service_stat, timer_stat = lstat(fim.SERVICE), lstat(fim.TIMER)
    return fim.State(
        installed=not _packages.missing(module, [fim.PACKAGE]),
        policy_text=read_regular(fim.POLICY, policy_stat), policy_stat=policy_stat,
        policy_dir_stat=lstat(fim.POLICY_DIR),
        db_stat=lstat(fim.DATABASE), new_db_stat=lstat(fim.NEW_DATABASE), db_dir_stat=db_dir_stat,
        service_text=read_regular(fim.SERVICE, service_stat), timer_text=read_regular(fim.TIMER, timer_stat),
        units=units,
        # the report is AIDE's, in root's directory; read only from there
        report_text=read_regular(fim.REPORT, report_stat) if trusted_dir else None,
        now=time.time())


def refuse_untrusted_directories(concern):
    """Before anything changes: a directory of the policy or the database that is a
    symlink or not root's could swap a file after it is written - refused, never repaired
    (someone else took it: that is for a person to look at). Loose modes are tightened."""
    for path in (fim.POLICY_DIR, os.path.dirname(fim.DB_DIR), fim.DB_DIR):
        info = lstat(path)
        if info is not None and (info.kind != "dir" or info.uid != 0):
            concern.refuse("%s is %s" % (path, fim.distrust(info, "dir", 0o022)))


def prepare_db_dir(state):
    """Root's 0700 directory for the database (its owner was checked before any change)."""
    info = state.db_dir_stat
    if info is None:
        os.makedirs(host(fim.DB_DIR), mode=0o700, exist_ok=True)
        os.chmod(host(fim.DB_DIR), 0o700)
    elif info.mode & 0o077:
        os.chmod(host(fim.DB_DIR), 0o700)


def build_database(module, mode, timeout):
    """Run AIDE to write a new database and move it into place; a dict for the result."""
    leftover = lstat(fim.NEW_DATABASE)
    if leftover is not None:
        os.unlink(host(fim.NEW_DATABASE))
    argv = []
    timeout_bin = module.get_bin_path("timeout")
    if timeout_bin:
        argv += [timeout_bin, "--kill-after=30", str(int(timeout))]
    nice = module.get_bin_path("nice")
    if nice:
        argv += [nice, "-n", "19"]
    ionice = module.get_bin_path("ionice")
    if ionice:
        argv += [ionice, "-c", "3"]
    argv += [module.get_bin_path("aide", required=True)] + fim.aide_argv(mode)
    started = time.monotonic()
    rc, out, err = module.run_command(argv, environ_update=ENV)
    result = dict(mode=mode, rc=rc, seconds=round(time.monotonic() - started, 1))
    new = lstat(fim.NEW_DATABASE)
    if not fim.run_ok(mode, rc) or new is None or new.kind != "file" or new.uid != 0:
        if new is not None:
            os.unlink(host(fim.NEW_DATABASE))
        why = "stopped after %d s (timeout)" % timeout if rc == 124 else "exit %s: %s" % (
            rc, ((err or out).strip().splitlines() or ["no new database written"])[-1])
        result["error"] = "aide --%s failed, the database was left as it was: %s" % (mode, why)
        return result
    os.chmod(host(fim.NEW_DATABASE), 0o600)
    current = lstat(fim.DATABASE)
    if current is not None and current.kind == "file" and current.uid == 0:
        # the previous database stays for an investigation, and aide.db is never missing
        link = host(fim.PREVIOUS_DATABASE + ".tmp")
        if os.path.lexists(link):
            os.unlink(link)
        os.link(host(fim.DATABASE), link)
        os.replace(link, host(fim.PREVIOUS_DATABASE))
    os.replace(host(fim.NEW_DATABASE), host(fim.DATABASE))
    return result


def write_owned(module, path, text, info):
    """Write one of the role's files, replacing a symlink or a file of another owner
    (never written through) with root's own."""
    if info is not None and (info.kind == "link" or info.uid != 0):
        os.unlink(host(path))
    # AIDE reads the candidate policy before it replaces the one in place
    validate = [module.get_bin_path("aide", required=True), "--config-check", "--config=%s"] if path == fim.POLICY else None
    changed, backup = _files.write_file(module, host(path), text, mode=0o600 if path == fim.POLICY else 0o644,
                                        validate=validate)
    os.chmod(host(path), 0o600 if path == fim.POLICY else 0o644)
    return backup if changed else None


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            extra_paths=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            schedule=dict(type="str", default="daily"),
            randomized_delay=dict(type="int", default=3600),
            timeout=dict(type="int", default=3600),
            reinit=dict(type="bool", default=False),
            max_age_days=dict(type="int", default=90),
            max_check_age_hours=dict(type="int", default=48),
            max_reported=dict(type="int", default=50),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "file_integrity", fim.CONTROLS, change="file integrity")
    try:
        policy = fim.render_policy(params["extra_paths"], params["exclude"])
        timer = fim.render_timer(params["schedule"], params["randomized_delay"])
    except fim.PolicyError as exc:
        concern.refuse(str(exc))
    for name in ("randomized_delay", "timeout", "max_age_days", "max_check_age_hours", "max_reported"):
        if params[name] < (0 if name == "randomized_delay" else 1):
            concern.refuse("%s must be positive" % name)
    if not module.check_mode:
        refuse_untrusted_directories(concern)
    concern.install(params["packages"], params["apt_cache_valid_time"], recommends=False)

    # read
    before = read_state(module)
    service = fim.render_service(params["timeout"], module.get_bin_path("aide") or fim.AIDE)

    # plan (in check mode, as the apply would: it installs aide first)
    ready = before.installed or (module.check_mode and fim.PACKAGE in params["packages"])
    writes = {}
    if ready:
        for path, old, text, info in ((fim.POLICY, before.policy_text, policy, before.policy_stat),
                                      (fim.SERVICE, before.service_text, service, lstat(fim.SERVICE)),
                                      (fim.TIMER, before.timer_text, timer, lstat(fim.TIMER))):
            if old != text or fim.distrust(info, "file", 0o022):
                writes[path] = (old, text, info)
    if fim.TIMER in writes:
        rc, out = run(module, ["systemd-analyze", "calendar", params["schedule"]])
        if rc is not None and rc != 0:
            concern.refuse("schedule %r is not a systemd calendar expression: %s" % (params["schedule"], out))
    enabled, active = before.timer_state()
    start = ready and (enabled != "enabled" or active != "active" or fim.TIMER in writes)
    reason = fim.reinit_reason(before, writes, params["reinit"], params["max_age_days"]) if ready else ""
    policy_dir = before.policy_dir_stat

    written, database = {}, {}
    with concern.changing(needed=bool(writes or start or reason)):
        if not module.check_mode:
            if fim.POLICY in writes and policy_dir is not None and policy_dir.mode & 0o022:
                os.chmod(host(fim.POLICY_DIR), policy_dir.mode & ~0o022)
            for path, (_old, text, info) in sorted(writes.items()):
                written[path] = write_owned(module, path, text, info)
            if fim.SERVICE in writes or fim.TIMER in writes:
                run(module, ["systemctl", "daemon-reload"])
            if start:
                run(module, ["systemctl", "enable", fim.TIMER_NAME])
                run(module, ["systemctl", "restart", fim.TIMER_NAME])
            if reason:
                prepare_db_dir(before)
                # an update over a trusted database writes what it accepts to syslog
                mode = "update" if before.database_trusted() else "init"
                database = build_database(module, mode, params["timeout"])
                database["reason"] = reason
        else:
            written = dict((path, None) for path in writes)
            if reason:
                database = dict(mode="update" if before.database_trusted() else "init", reason=reason)

    # read back (in check mode the state read first: no planned change breaks a control)
    after = before if module.check_mode else read_state(module)
    built = bool(database) and not module.check_mode and "error" not in database
    if built and after.report is not None and after.report.kind == "update":
        database["accepted"] = dict((kind, len(after.report.entries[kind])) for kind in ("added", "removed", "changed"))

    findings = [
        fim.policy_finding(before, after, policy, module.check_mode, fim.POLICY in writes or bool(concern.installed)),
        fim.database_finding(before, after, params["max_age_days"], module.check_mode, bool(reason),
                             applied_ok="error" not in database,
                             note=database.get("error") or ("built by aide --%s in %.1f s (%s)" % (
                                 database["mode"], database["seconds"], reason) if built else "")),
        fim.schedule_finding(before, after, service, timer, module.check_mode,
                             bool(start or fim.SERVICE in writes or fim.TIMER in writes)),
        fim.check_finding(before, after, params["max_check_age_hours"], params["max_reported"], module.check_mode,
                          built),
    ]
    diff = [_files.file_diff(path, old, text) for path, (old, text, _info) in sorted(writes.items())]
    changed = bool(writes or start or reason)
    concern.exit(findings, changed, diff, files=written, database=database)
