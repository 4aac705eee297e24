# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wiring of evidence_bundle: arguments, the collection into a private staging directory,
the result (the bundle's path for the fetch, timings, truncations)."""

from __future__ import annotations

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
