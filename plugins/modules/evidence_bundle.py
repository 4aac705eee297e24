#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: evidence_bundle
short_description: A read-only incident-response triage bundle of one host
version_added: 0.1.0
description:
  - Collects, in order of volatility, into one tar.gz in a private staging directory
    (C(mkdtemp), 0700, under O(staging_parent)) 1) running processes from C(/proc) (pid,
    ppid, uid, argv, exe link, start time) with the SHA-256 of each distinct binary read
    through C(/proc/PID/exe), so that a binary deleted from disk is still hashed, and
    flagged; 2) sockets (C(/proc/net/tcp), C(tcp6), C(udp), C(udp6), C(unix) and
    C(ss -tunap)); 3) sessions (C(who), C(last), C(lastb), C(lastlog) and the raw utmp,
    wtmp, btmp and lastlog files); 4) authentication logs (C(/var/log/auth.log*) and the
    journal of sshd and of the auth facilities over O(since_days)); 5) cron files, systemd
    timers, unit files and units, loaded kernel modules and every account's SSH
    authorized keys; 6) files changed in the last O(since_days) days under C(/etc) and in
    the homes' dot-files; 7) a bodyfile timeline (TSK 3.x, read by C(mactime)) of
    C(/etc), C(/usr/bin), C(/usr/sbin), C(/bin), C(/sbin), C(/usr/lib/systemd),
    C(/var/spool/cron) and the homes' dot-files.
  - Changes nothing on the host but the staging directory, which it removes itself when
    the collection fails and which the playbook removes after fetching the bundle. Files
    are read with C(O_NOFOLLOW) (and C(O_NOATIME)), directories walked without following a
    symlink, every read capped; what a cap cut short is in RV(evidence.truncated).
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
options:
  since_days:
    description: The window, in days, of the logs read from the journal and of the recently changed files.
    type: int
    default: 7
  staging_parent:
    description: Where the private staging directory is made.
    type: path
    default: /var/tmp
  file_bytes:
    description: The most read of one file or one command's output.
    type: int
    default: 4194304
  log_bytes:
    description: The most read of one log file or journal query.
    type: int
    default: 67108864
  hash_bytes:
    description: The most read of one binary to hash it.
    type: int
    default: 268435456
  bundle_bytes:
    description: The most the bundle holds, uncompressed.
    type: int
    default: 536870912
  recent_files:
    description: The most recently changed files listed.
    type: int
    default: 5000
  timeline_entries:
    description: The most lines of the bodyfile.
    type: int
    default: 200000
notes:
  - Runs as root (C(become)) to read every process and log.
  - Bodyfile names are escaped - every byte outside printable ASCII, C(|) and C(\) are
    written C(\xHH) - so a name holding a newline or a pipe keeps its line and fields.
"""

EXAMPLES = r"""
- name: Triage bundle
  yoroi.baseline.evidence_bundle:
    since_days: 3
  register: evidence
"""

RETURN = r"""
evidence:
  description: The bundle and how it was collected; no findings are returned (a bundle is evidence, not a control's state).
  returned: success
  type: dict
  contains:
    bundle:
      description: The path of the bundle on the host (fetch it, then remove RV(evidence.staging)).
      type: str
    staging:
      description: The private staging directory that holds the bundle.
      type: str
    seconds:
      description: How long the collection took.
      type: float
    size:
      description: The bundle's size in bytes.
      type: int
    timings:
      description: Each step, in the order it ran, with its seconds.
      type: list
      elements: dict
    truncated:
      description: What a cap cut short (member, path, reason).
      type: list
      elements: dict
    errors:
      description: What could not be read or run (a missing command, an unreadable file).
      type: list
      elements: dict
    members:
      description: The SHA-256 of each member as written on the host.
      type: dict
    deleted_binaries:
      description: Processes whose binary was deleted from disk, with the binary's SHA-256.
      type: list
      elements: dict
    collector_connection:
      description: C(SSH_CONNECTION) as the module saw it (client address and port), when set.
      type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _evidence

ARGUMENT_SPEC = dict(
    since_days=dict(type="int", default=7),
    staging_parent=dict(type="path", default="/var/tmp"),
    file_bytes=dict(type="int", default=4 * _evidence.MIB),
    log_bytes=dict(type="int", default=64 * _evidence.MIB),
    hash_bytes=dict(type="int", default=256 * _evidence.MIB),
    bundle_bytes=dict(type="int", default=512 * _evidence.MIB),
    recent_files=dict(type="int", default=5000),
    timeline_entries=dict(type="int", default=200000),
)
CAPS = ("file_bytes", "log_bytes", "hash_bytes", "bundle_bytes", "recent_files", "timeline_entries")


def command_runner(module):
    """run(bundle, member, argv, cap): the command's stdout (capped) into the member; a
    command that is not installed is recorded, not an error."""

    def run(bundle, member, argv, cap=None):
        binary = module.get_bin_path(argv[0])
        if binary is None:
            bundle.errors.append({"member": member, "error": "%s not installed" % argv[0]})
            return
        rc, out, err = module.run_command([binary] + argv[1:], environ_update={"LC_ALL": "C", "SYSTEMD_PAGER": ""},
                                          binary_data=True, encoding=None)
        data = out if isinstance(out, bytes) else out.encode("utf-8", "surrogateescape")
        limit = cap or bundle.caps["file_bytes"]
        if len(data) > limit:
            bundle.truncated.append({"member": member, "reason": "first %d bytes of the output kept" % limit})
            data = data[:limit]
        bundle.add(member, data)
        if rc != 0:
            bundle.errors.append({"member": member, "rc": rc,
                                  "error": (err if isinstance(err, str) else err.decode("utf-8", "replace"))[-500:]})

    return run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params["since_days"] < 0 or any(params[name] <= 0 for name in CAPS):
        module.fail_json(msg="since_days must be 0 or more and every cap above 0")
    started = time.monotonic()
    try:
        staging = _evidence.make_staging(params["staging_parent"])
    except OSError as exc:
        module.fail_json(msg="cannot make the staging directory under %s: %s" % (params["staging_parent"], exc))
    try:
        bundle = _evidence.collect(staging, params["since_days"], {name: params[name] for name in CAPS},
                                   command_runner(module))
    except Exception as exc:  # never leave the staging directory behind
        _evidence.remove_staging(staging)
        module.fail_json(msg="evidence collection failed: %s: %s" % (type(exc).__name__, exc))
    seconds = round(time.monotonic() - started, 3)
    # no findings: a bundle is evidence, not a control's state; the controller stores it
    evidence = dict(bundle=bundle.path, staging=staging, seconds=seconds, size=os.path.getsize(bundle.path),
                    timings=bundle.timings, truncated=bundle.truncated, errors=bundle.errors,
                    members=bundle.members, deleted_binaries=bundle.deleted,
                    collector_connection=os.environ.get("SSH_CONNECTION", ""))
    module.exit_json(changed=False, evidence=evidence)


if __name__ == "__main__":
    main()
