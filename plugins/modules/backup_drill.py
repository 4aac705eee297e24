#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_drill
short_description: Restore drill - check the restic repository, restore the latest snapshot, compare with the live files
version_added: 0.1.0
description:
  - Uses the repository that the C(restic_backup) module configured on the host
    (C(/etc/yoroi/backup/restic.env) and the 0600 password file; the password is never an
    argument nor in the result).
  - C(DRL-001) C(restic check --read-data-subset) (without the local cache) passes; the
    result is recorded for C(BAK-002).
  - C(DRL-002) the latest snapshot (or O(sample_files) of its files, by C(restic dump)) is
    restored, without the local cache, into a new directory made by C(mkdtemp) (0700) under
    O(scratch_parent), always removed afterwards (also on SIGTERM or SIGHUP). Each regular file is compared by SHA-256
    with the live file, opened component by component without following a symbolic link
    and read in chunks. A live file whose size or mtime differ from the snapshot's (or
    modified after it, or no longer a regular file) is reported as changed since the
    snapshot, a missing one as restorable but deleted; an unchanged file whose content
    differs, or a file restic could not restore, fails.
  - C(DRL-003) the latest snapshot is younger than O(max_age_hours).
  - Every finding carries C(seconds), the drill's duration on the host; RV(drill) has the details.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: The drill runs in check mode too (it changes nothing that stays); only the check's record is not written.
  diff_mode:
    support: none
    description: No file is changed.
extends_documentation_fragment:
  - yoroi.baseline.concern
options:
  max_age_hours:
    description: The age the latest snapshot may have (C(DRL-003)).
    type: int
    default: 26
  check_subset:
    description: The share of the data C(restic check --read-data-subset) reads; empty skips the check.
    type: str
    default: 5%
  sample_files:
    description: Restore only this many files chosen at random; 0 restores the whole snapshot.
    type: int
    default: 0
  scratch_parent:
    description: Where the private scratch directory is made.
    type: path
    default: /var/tmp
notes:
  - Runs as root (C(become)). The scratch directory needs room for the snapshot (or the sample).
"""

EXAMPLES = r"""
- name: Restore drill of 200 files
  yoroi.baseline.backup_drill:
    sample_files: 200
"""

RETURN = r"""
findings:
  description: DRL-001, DRL-002 (and one DRL-002 per corrupt or unrestorable file), DRL-003.
  returned: always
  type: list
  elements: dict
drill:
  description: snapshot, snapshot_age_seconds, restore_seconds, seconds, counts by outcome, mode.
  returned: always
  type: dict
"""

import os
import random
import shutil
import signal
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _backup as bak
from ansible_collections.yoroi.baseline.plugins.module_utils import _concern
from ansible_collections.yoroi.baseline.plugins.module_utils import _files
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import FAIL, finding

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


class Interrupted(Exception):
    pass


def _interrupted(signum, _frame):
    raise Interrupted("signal %d" % signum)


def restic_argv(restic, repository, *args):
    return [restic] + bak.restic_options(repository) + ["--no-cache"] + list(args)


def run_check(module, restic, repository, env, subset):
    if not subset:
        return None
    rc, out, err = module.run_command(restic_argv(restic, repository, "check", "--read-data-subset=%s" % subset),
                                      environ_update=env)
    return dict(bak.parse_check(rc, out, err), subset=subset)


def latest_snapshot(module, restic, repository, env):
    # this host's snapshots only: a repository may be shared by several hosts
    rc, out, err = module.run_command(restic_argv(restic, repository, "--no-lock", "snapshots", "--json",
                                                  "--host", os.uname()[1]), environ_update=env)
    if rc != 0:
        return None, "restic snapshots failed: %s" % bak.last_line(err or out)
    snapshots = bak.parse_snapshots(out)
    return (snapshots[0], "") if snapshots else (None, "the repository holds no snapshot")


def restore_all(restic, repository, env, snapshot, scratch, files):
    """Restore the whole snapshot; {path: (restored path, snapshot mtime)} and the error."""
    rc, out, err = bak.run_child(restic_argv(restic, repository, "restore", snapshot["id"], "--target", scratch), env)
    error = "" if rc == 0 else bak.last_line(err or out)
    return dict((item["path"], (os.path.join(scratch, item["path"].lstrip("/")), item["mtime"])) for item in files), error


def restore_sample(restic, repository, env, snapshot, scratch, files, count):
    """``restic dump`` of ``count`` files chosen at random, each into its own scratch file."""
    chosen = random.SystemRandom().sample(files, min(count, len(files)))
    restored = {}
    errors = []
    for index, item in enumerate(chosen):
        target = os.path.join(scratch, "%d" % index)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            argv = restic_argv(restic, repository, "dump", snapshot["id"], item["path"])
            rc, _out, err = bak.run_child(argv, env, stdout=handle)
        if rc != 0:
            errors.append(bak.last_line(err))
            os.unlink(target)
        restored[item["path"]] = (target, item["mtime"])
    return restored, "; ".join(errors[:3])


def main():
    module = AnsibleModule(
        argument_spec=_concern.argument_spec(dict(
            max_age_hours=dict(type="int", default=26),
            check_subset=dict(type="str", default="5%"),
            sample_files=dict(type="int", default=0),
            scratch_parent=dict(type="path", default="/var/tmp"),
        ), protected=False),
        supports_check_mode=True,
    )
    params = module.params
    concern = _concern.Concern(module, "backup_drill", bak.DRILL_CONTROLS, change="backup drill")
    if params["check_subset"] and not bak.SUBSET.match(params["check_subset"]):
        concern.refuse("check_subset %r is not N%% or n/t" % params["check_subset"])
    started = time.monotonic()
    env_text = _files.read_text(bak.ENV_FILE)
    env = bak.restic_environment(env_text)
    repository = env.get("RESTIC_REPOSITORY", "")
    restic = module.get_bin_path("restic")
    if not repository or not os.path.exists(bak.PASSWORD_FILE) or not restic:
        why = "no backup configured on this host (%s, %s, restic)" % (bak.ENV_FILE, bak.PASSWORD_FILE)
        concern.exit([finding(c, FAIL, e, why, "apply the backup role first") for c, e in sorted(bak.DRILL_CONTROLS.items())],
                     False, drill={"seconds": round(time.monotonic() - started, 2)})
    env = dict(env, **C_LOCALE)

    check = run_check(module, restic, repository, env, params["check_subset"])
    if check is not None and not module.check_mode:
        # the drill's check counts for BAK-002 like the service's
        os.makedirs(bak.STATE_DIR, 0o700, exist_ok=True)
        _files.write_file(module, bak.CHECK_STATE, bak.render_check_state(time.time(), check["ok"], check["subset"],
                                                                          check["summary"], "restore drill"),
                          mode=0o600, backup=False)
    snapshot, error = latest_snapshot(module, restic, repository, env)
    outcomes = {}
    restore = {"ok": False, "error": error, "seconds": 0.0,
               "mode": "%d sampled file(s)" % params["sample_files"] if params["sample_files"] else "whole snapshot"}
    if snapshot is not None:
        rc, out, err = module.run_command(restic_argv(restic, repository, "--no-lock", "ls", "--json", snapshot["id"]),
                                          environ_update=env)
        files = bak.parse_ls(out) if rc == 0 else []
        scratch = None
        previous = dict((sig, signal.signal(sig, _interrupted)) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT))
        try:
            scratch = tempfile.mkdtemp(prefix="yoroi-drill-", dir=params["scratch_parent"])
            t0 = time.monotonic()
            if rc != 0:
                restored, error = {}, "restic ls failed: %s" % bak.last_line(err or out)
            elif params["sample_files"]:
                restored, error = restore_sample(restic, repository, env, snapshot, scratch, files,
                                                 params["sample_files"])
            else:
                restored, error = restore_all(restic, repository, env, snapshot, scratch, files)
            restore["seconds"] = time.monotonic() - t0
            restore["ok"] = not error and rc == 0
            restore["error"] = error
            for path, (restored_path, mtime) in restored.items():
                outcomes[path] = bak.compare_file(path, restored_path, snapshot["time"], restored_mtime=mtime)
        except Interrupted as exc:
            restore["error"] = "interrupted (%s); the scratch directory was removed" % exc
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    seconds = time.monotonic() - started
    findings = bak.drill_findings(check, snapshot, outcomes, restore, time.time(), params["max_age_hours"], seconds)
    groups = bak.tally(outcomes)
    drill = {"seconds": round(seconds, 2), "restore_seconds": round(restore["seconds"], 2), "mode": restore["mode"],
             "counts": dict((name, len(paths)) for name, paths in groups.items())}
    if snapshot is not None:
        drill.update(snapshot=snapshot["id"], snapshot_time=bak.iso(snapshot["time"]),
                     snapshot_age_seconds=int(time.time() - snapshot["time"]))
    concern.exit(findings, False, drill=drill)


if __name__ == "__main__":
    main()
