#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: batch_check
short_description: Evaluate several concern modules of a host in check mode, in one call
version_added: 0.1.0
description:
  - The audit of the baseline (C(yoroi audit), check mode of C(playbooks/site.yml)) runs
    every concern module of a host in one call of this module instead of one call each,
    so one Python process on the host and one SSH round trip in place of one per concern.
  - Each entry of O(checks) runs that module's own C(main()) with its own arguments,
    exactly as Ansible would run the module on its own (its argument spec, checks and
    C(no_log) scrubbing); its result is returned in RV(checks), in order. A module that
    fails does not stop the others; the task then fails naming it.
  - You do not call it yourself. In check mode, with C(yoroi_batch_checks) true (the
    baseline play sets it), the concern modules' tasks are deferred on the controller
    (by this module's action plugin, which C(meta/runtime.yml) makes theirs too) and the
    play's last task calls this module with the deferred calls of that host.
  - Runs only in check mode; outside it, it fails and runs nothing.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Check mode only.
  diff_mode:
    support: full
    description: Each entry of RV(checks) carries its module's own C(diff).
options:
  checks:
    description: The deferred module calls, in the order their tasks ran.
    type: list
    elements: dict
    required: true
    suboptions:
      module:
        description: The module's short name; one of the concern modules of the baseline.
        type: str
        required: true
        choices: [access_review, audit_rules, change_guard, file_integrity, file_permissions, firewall, firmware,
                  kernel_hardening, listening_services, log_collector, log_forwarding, password_policy, patching,
                  restic_backup, sshd_hardening, stale_accounts, time_sync, totp_mfa]
      args:
        description: Its arguments, as its task gave them.
        type: dict
        default: {}
      task:
        description: The name of the task that was deferred (for the report).
        type: str
        default: ""
  secrets:
    description:
      - The secret options of the calls (those of C(plugins/module_utils/_batch.py)'s
        C(SECRET_OPTIONS), such as the backup's password), one mapping per entry of
        O(checks), in the same order. Kept out of the logged invocation and scrubbed from
        every result.
    type: list
    elements: dict
    default: []
notes:
  - Runs as root (C(become)) like the modules it runs.
"""

EXAMPLES = r"""
# The baseline play ends with this task; it is not meant to be written by hand.
- name: Evaluate the deferred checks of every concern in one call per host
  yoroi.baseline.batch_check:
"""

RETURN = r"""
checks:
  description:
    - One entry per deferred call, in order - the module's own result (C(findings),
      C(changed) meaning "would change", C(diff), C(failed) and C(msg) when it failed)
      with C(module), C(task) and C(seconds) (how long the module took in the batch) added.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _batch
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import access_review
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import audit_rules
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import change_guard
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import file_integrity
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import file_permissions
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import firewall
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import kernel_hardening
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import listening_services
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import password_policy
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import patching
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import restic_backup
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import sshd_hardening
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import stale_accounts
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import time_sync
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import totp_mfa
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import firmware
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import log_collector
from ansible_collections.yoroi.baseline.plugins.module_utils._wiring import log_forwarding

MAINS = {
    "access_review": access_review.main,
    "audit_rules": audit_rules.main,
    "change_guard": change_guard.main,
    "file_integrity": file_integrity.main,
    "file_permissions": file_permissions.main,
    "firewall": firewall.main,
    "kernel_hardening": kernel_hardening.main,
    "listening_services": listening_services.main,
    "password_policy": password_policy.main,
    "patching": patching.main,
    "restic_backup": restic_backup.main,
    "sshd_hardening": sshd_hardening.main,
    "stale_accounts": stale_accounts.main,
    "time_sync": time_sync.main,
    "totp_mfa": totp_mfa.main,
    "firmware": firmware.main,
    "log_forwarding": log_forwarding.main,
    "log_collector": log_collector.main,
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            secrets=dict(type="list", elements="dict", default=[], no_log=True),
            checks=dict(type="list", elements="dict", required=True, options=dict(
                module=dict(type="str", required=True, choices=sorted(_batch.BATCHABLE)),
                args=dict(type="dict", default={}),
                task=dict(type="str", default=""),
            )),
        ),
        supports_check_mode=True,
    )
    names = [check["module"] for check in module.params["checks"]]
    # The arguments are each module's business (and its no_log); echo only the names.
    invocation = {"module_args": {"checks": [{"module": name} for name in names]}}
    if not module.check_mode:
        module.fail_json(msg="batch_check runs modules in check mode only; nothing was run",
                         invocation=invocation)
    internal = _batch.internal_args(_batch.raw_args())
    results, failed, memo = [], [], {}
    secrets = module.params["secrets"] or []
    if secrets and len(secrets) != len(module.params["checks"]):
        module.fail_json(msg="secrets must hold one mapping per check", invocation=invocation)
    for index, check in enumerate(module.params["checks"]):
        args = dict(check["args"])
        own = secrets[index] if secrets else {}
        if set(own) - set(_batch.SECRET_OPTIONS.get(check["module"], ())):
            module.fail_json(msg="%s: only its secret options travel as secrets" % check["module"], invocation=invocation)
        args.update(own)
        started = time.monotonic()
        result = _batch.run_one(MAINS[check["module"]], check["module"], args, internal, memo)
        result.update(module=check["module"], task=check["task"], seconds=round(time.monotonic() - started, 3))
        if result.get("failed"):
            failed.append("%s (%s): %s" % (check["task"] or check["module"], check["module"], result.get("msg", "")))
        results.append(result)
    outcome = dict(checks=results, changed=any(r.get("changed") for r in results), invocation=invocation)
    if failed:
        module.fail_json(msg="; ".join(failed), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
