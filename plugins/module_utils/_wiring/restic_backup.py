# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring of the module yoroi.baseline.restic_backup: arguments, read, plan, act, exit.

Its documentation is in plugins/modules/restic_backup.py. The code lives here, in module_utils,
so that the check-mode batch (plugins/modules/batch_check.py) can run it in one process
with the other concerns; the module itself only calls main().
"""

from __future__ import annotations

import os
import stat
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _backup as bak
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import finding, fold

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


def restic_env(params):
    env = dict(C_LOCALE, RESTIC_REPOSITORY=params["repository"], RESTIC_PASSWORD_FILE=bak.PASSWORD_FILE,
               RESTIC_CACHE_DIR=bak.CACHE_DIR)
    env.update(dict((k, str(v)) for k, v in (params.get("environment") or {}).items()))
    return env


def read_repository(module, restic, params):
    """{state: ok|missing|password|unreachable|unknown, snapshots, error}. Only this host's
    snapshots count (``--host``, restic's own default name for it): another host's
    snapshot of /etc in a shared repository proves nothing here."""
    if not restic:
        return {"state": "unknown", "error": "restic is not installed", "snapshots": []}
    rc, out, err = module.run_command([restic] + bak.restic_options(params["repository"])
                                      + ["--no-lock", "snapshots", "--json", "--host", os.uname()[1]],
                                      environ_update=restic_env(params))
    if rc == 0:
        try:
            return {"state": "ok", "snapshots": bak.parse_snapshots(out), "error": ""}
        except ValueError as exc:
            return {"state": "unknown", "snapshots": [], "error": "restic snapshots printed no JSON: %s" % exc}
    kind = bak.repository_error(err)
    if kind == "missing":
        return {"state": "missing", "snapshots": [], "error": "no repository at %s yet" % params["repository"]}
    return {"state": "password" if kind == "password" else "unreachable", "snapshots": [],
            "error": "restic snapshots failed: %s" % bak.last_line(err or out)}


def password_info():
    try:
        st = os.lstat(bak.PASSWORD_FILE)
    except OSError:
        return {"exists": False}
    try:
        dir_mode = os.stat(bak.CONFIG_DIR).st_mode & 0o7777
    except OSError:
        dir_mode = None
    return {"exists": True, "uid": st.st_uid, "mode": st.st_mode & 0o7777, "dir_mode": dir_mode,
            "link": stat.S_ISLNK(st.st_mode)}


def unit_state(module, systemctl):
    if not systemctl:
        return "missing", "missing"
    _rc, enabled, _err = module.run_command([systemctl, "is-enabled", bak.TIMER_UNIT], environ_update=C_LOCALE)
    _rc, active, _err = module.run_command([systemctl, "is-active", bak.TIMER_UNIT], environ_update=C_LOCALE)
    return enabled.strip() or "missing", active.strip() or "inactive"


def read_host(module, params):
    restic = module.get_bin_path("restic")
    state = {
        "files": dict((path, _files.read_text(path)) for path, _c, _m in bak.wanted_files(params)),
        "password": password_info(),
        "timer": unit_state(module, module.get_bin_path("systemctl")),
        "check": bak.parse_check_state(_files.read_text(bak.CHECK_STATE)),
        "restic": restic,
    }
    matches = state["files"][bak.PASSWORD_FILE] == params["password"].rstrip("\n") + "\n"
    state["password_matches"] = matches
    if matches:
        state["repo"] = read_repository(module, restic, params)
    else:
        state["repo"] = {"state": "unknown", "snapshots": [],
                         "error": "the password file is not in place yet, so the repository was not read"}
    return state


def control_ok(state, params, now):
    """{control or (control, path): ok} on a state read."""
    ok = {}
    fresh = bak.fresh_snapshots(state["repo"]["snapshots"], params["paths"], now, params["max_age_hours"])
    for path in params["paths"]:
        ok[("BAK-001", path)] = state["repo"]["state"] == "ok" and fresh[path][1]
    ok["BAK-002"] = bak.check_state_ok(state["check"], now, params["check_max_age_hours"])[0]
    ok["BAK-003"] = bak.timer_ok(*state["timer"])
    ok["BAK-004"] = bak.password_file_ok(state["password"], state["password_matches"])[0]
    return ok


def make_dirs():
    """The private directories, created 0700 or narrowed to it."""
    changed = False
    for path in (bak.CONFIG_DIR, bak.STATE_DIR, bak.CACHE_DIR, os.path.dirname(bak.SSH_KEY)):
        if not os.path.isdir(path):
            os.makedirs(path, 0o700)
            changed = True
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o700)
            changed = True
    return changed


def fix_owner_mode(path, mode):
    st = os.lstat(path)
    changed = False
    if st.st_uid != 0 or st.st_gid != 0:
        os.lchown(path, 0, 0)
        changed = True
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        changed = True
    return changed


def ensure_key(module, hostname):
    """The dedicated SFTP key; (changed, public key)."""
    changed = False
    if not os.path.exists(bak.SSH_KEY):
        keygen = module.get_bin_path("ssh-keygen", required=True)
        rc, _out, err = module.run_command([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "yoroi-backup@%s" % hostname,
                                            "-f", bak.SSH_KEY], environ_update=C_LOCALE)
        if rc != 0:
            raise OSError("ssh-keygen failed: %s" % err.strip())
        changed = True
    changed |= fix_owner_mode(bak.SSH_KEY, 0o600)
    return changed, (_files.read_text(bak.SSH_KEY + ".pub") or "").strip()


def public_key():
    return (_files.read_text(bak.SSH_KEY + ".pub") or "").strip()


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            repository=dict(type="str", default=""),
            password=dict(type="str", default="", no_log=True),
            environment=dict(type="dict", default={}, no_log=True),
            paths=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            schedule=dict(type="str", default="daily"),
            keep_daily=dict(type="int", default=7),
            keep_weekly=dict(type="int", default=4),
            keep_monthly=dict(type="int", default=6),
            max_age_hours=dict(type="int", default=26),
            check_subset=dict(type="str", default="5%"),
            check_max_age_hours=dict(type="int", default=50),
            # public keys of the backup host, not a secret
            host_keys=dict(type="list", elements="str", default=[], no_log=False),
            initial_backup=dict(type="bool", default=True),
            key_only=dict(type="bool", default=False),
        ), protected=False, packages=True),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "restic_backup", bak.CONTROLS, change="backup")
    if not bak.configured(params):
        # nothing to back up to: every control fails, nothing is touched
        concern.exit([] if params["key_only"] else bak.not_configured_findings(), False, configured=False)
    try:
        bak.check_inputs(params)
    except bak.InputError as exc:
        concern.refuse(str(exc))
    sftp = bak.sftp_parts(params["repository"])
    hostname = os.uname()[1]

    if params["key_only"]:
        if not sftp:
            concern.exit([], False)
        changed = False
        with concern.changing(needed=not os.path.exists(bak.SSH_KEY)):
            if not module.check_mode:
                try:
                    changed = make_dirs()
                    key_changed, _pub = ensure_key(module, hostname)
                    changed |= key_changed
                except OSError as exc:
                    concern.fail("the SFTP key could not be made: %s" % exc, changed=changed)
        extra = {"sftp_user": sftp["user"]}
        if public_key():
            extra["public_key"] = public_key()
        concern.exit([], changed, **extra)

    concern.install(params["packages"], params["apt_cache_valid_time"])
    now = time.time()
    before = read_host(module, params)
    ok_before = control_ok(before, params, now)
    wanted = bak.wanted_files(params)
    to_write = [(path, content, mode) for path, content, mode in wanted if before["files"][path] != content]
    plan = bool(to_write) or not all(ok_before.values()) or (sftp and not os.path.exists(bak.SSH_KEY))

    changed = False
    errors = []
    diff = [_files.file_diff(path, before["files"][path], content)
            for path, content, _mode in bak.wanted_files(params, public=True) if before["files"][path] != content]
    with concern.changing(needed=plan):
        if not module.check_mode and plan:
            try:
                changed |= make_dirs()
                for path, content, mode in wanted:
                    # a secret is never copied to a backup file beside it
                    written, _backup = _files.write_file(module, path, content, mode=mode,
                                                         backup=path != bak.PASSWORD_FILE)
                    changed |= written
                    changed |= fix_owner_mode(path, mode)
                if sftp:
                    changed |= ensure_key(module, hostname)[0]
            except OSError as exc:
                concern.fail("writing the backup configuration failed: %s" % exc, changed=changed)
            systemctl = module.get_bin_path("systemctl", required=True)
            restic = module.get_bin_path("restic", required=True)
            if any(path in (bak.SERVICE, bak.TIMER) for path, _c, _m in to_write):
                module.run_command([systemctl, "daemon-reload"], environ_update=C_LOCALE)
            repo = read_repository(module, restic, params)
            if repo["state"] == "missing":
                rc, out, err = module.run_command([restic] + bak.restic_options(params["repository"]) + ["init"],
                                                  environ_update=restic_env(params))
                changed |= rc == 0
                if rc != 0:
                    errors.append("restic init failed: %s" % bak.last_line(err or out))
                repo = read_repository(module, restic, params)
            if not bak.timer_ok(*unit_state(module, systemctl)):
                rc, _out, err = module.run_command([systemctl, "enable", "--now", bak.TIMER_UNIT], environ_update=C_LOCALE)
                changed = True
                if rc != 0:
                    errors.append("systemctl enable --now %s failed: %s" % (bak.TIMER_UNIT, err.strip()))
            fresh = bak.fresh_snapshots(repo["snapshots"], params["paths"], now, params["max_age_hours"])
            needs_run = not all(young for _snap, young in fresh.values()) or \
                not bak.check_state_ok(bak.parse_check_state(_files.read_text(bak.CHECK_STATE)), now,
                                       params["check_max_age_hours"])[0]
            if params["initial_backup"] and repo["state"] == "ok" and needs_run:
                rc, _out, err = module.run_command([systemctl, "start", bak.SERVICE_UNIT], environ_update=C_LOCALE)
                changed = True
                if rc != 0:
                    errors.append("the first run of %s failed (journalctl -u %s): %s"
                                  % (bak.SERVICE_UNIT, bak.SERVICE_UNIT, err.strip()))

    after = before if module.check_mode or not plan else read_host(module, params)
    ok_after = control_ok(after, params, time.time())

    def status(key):
        return fold(ok_before[key], ok_after[key], module.check_mode, attempted=changed, applied_ok=True)

    findings = bak.snapshot_findings(params["paths"], after["repo"], time.time(), params["max_age_hours"],
                                     lambda path, _young: status(("BAK-001", path)))
    for item in findings:
        if errors and item["status"] != "pass":
            item["evidence"] += "; " + "; ".join(errors)
    findings.append(_finding("BAK-002", status("BAK-002"),
                             bak.check_state_ok(after["check"], time.time(), params["check_max_age_hours"])[1],
                             "recorded in %s by %s or a drill" % (bak.CHECK_STATE, bak.SERVICE_UNIT)))
    findings.append(_finding("BAK-003", status("BAK-003"), "is-enabled: %s, is-active: %s" % after["timer"],
                             "systemctl is-enabled/is-active %s" % bak.TIMER_UNIT))
    findings.append(_finding("BAK-004", status("BAK-004"),
                             bak.password_file_ok(after["password"], after["password_matches"])[1],
                             "lstat of %s; restic reads it through RESTIC_PASSWORD_FILE" % bak.PASSWORD_FILE))
    extra = {"configured": True}
    if sftp:
        extra["sftp_user"] = sftp["user"]
        if public_key():
            extra["public_key"] = public_key()
    if after["repo"]["state"] == "ok":
        snaps = after["repo"]["snapshots"]
        extra["snapshots"] = {"count": len(snaps), "latest": snaps[0]["id"] if snaps else None,
                              "latest_time": bak.iso(snaps[0]["time"]) if snaps else None}
    concern.exit(findings, changed, diff, **extra)


def _finding(control, status, actual, evidence):
    return finding(control, status, bak.CONTROLS[control], actual, evidence)
