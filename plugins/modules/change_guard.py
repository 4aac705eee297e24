#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: change_guard
short_description: Arm, confirm or roll back the lockout guard of a change that can cut access
version_added: 0.1.0
description:
  - The role side of the lockout guard (DESIGN invariant 5, control C(GRD-001)). A module
    that makes a risky change (sshd, PAM, MFA, firewall) arms a guard itself and returns
    its C(guard_token); a role that changes files with other modules arms one with
    O(state=armed) first.
  - An armed guard has backed up the files to C(/var/lib/yoroi/guard/<token>/) and
    scheduled the transient systemd timer C(yoroi-guard-<token>.timer), which restores the
    files and reloads the units after the timeout unless the change is confirmed.
  - O(state=confirmed) after a fresh login of the automation account succeeded - stops the
    timer and keeps the backups. C(GRD-001) passes. If the timer fired first, the change is
    already undone; the finding is C(error) and the task fails.
  - O(state=rolled_back) after the fresh login failed and the host is reachable again -
    checks that the timer restored the files (or restores them now when it has not fired
    yet). C(GRD-001) is C(error) with "rolled back" and the reason; the task itself does not
    fail, so the role can fail the host with its own message.
author:
  - Yoroi maintainers
attributes:
  check_mode:
    support: full
    description: Reports what it would do; no timer is armed, stopped or fired.
  diff_mode:
    support: none
options:
  state:
    description: What to do with the guard.
    type: str
    required: true
    choices: [armed, confirmed, rolled_back]
  token:
    description: The guard's token, as returned when it was armed. Required unless O(state=armed).
    type: str
  paths:
    description: With O(state=armed), the files the coming change may replace or create.
    type: list
    elements: path
    default: []
  reload_units:
    description: With O(state=armed), the systemd units to reload (or restart) after a restore.
    type: list
    elements: str
    default: []
  timeout:
    description: With O(state=armed), seconds until the host restores the files by itself (10 or more).
    type: int
    default: 300
  change:
    description: What was changed (for example C(sshd) or C(PAM)); the subject of the GRD-001 finding.
    type: str
  reason:
    description: With O(state=rolled_back), why the change is rolled back (put in the finding).
    type: str
    default: the fresh login of the automation account failed
  guard_root:
    description: Where guard directories live on the host.
    type: path
    default: /var/lib/yoroi/guard
notes:
  - Runs as root (C(become)); needs systemd as the init system.
"""

EXAMPLES = r"""
# The pattern of a role whose module arms the guard itself and returns guard_token:
- name: Change sshd (arms a guard when something changes)
  yoroi.baseline.sshd_hardening: {}
  register: result

- name: Drop the connection so the next task logs in afresh
  ansible.builtin.meta: reset_connection

- name: Log in afresh as the automation account
  ansible.builtin.ping:
  register: fresh_login
  ignore_unreachable: true
  when: result.guard_token is defined

- name: Keep the change
  yoroi.baseline.change_guard:
    state: confirmed
    token: "{{ result.guard_token }}"
  when: result.guard_token is defined and not fresh_login.unreachable | default(false)

- name: Wait until the guard has restored the old files
  ansible.builtin.wait_for_connection:
    delay: 310
  when: fresh_login.unreachable | default(false)

- name: Check the rollback happened
  yoroi.baseline.change_guard:
    state: rolled_back
    token: "{{ result.guard_token }}"
    reason: "{{ fresh_login.msg }}"
  when: fresh_login.unreachable | default(false)

# A role that changes files with other modules arms the guard first:
- name: Arm the guard
  yoroi.baseline.change_guard:
    state: armed
    paths: [/etc/nftables.conf]
    reload_units: [nftables]
    timeout: 120
  register: guard
"""

RETURN = r"""
token: {description: The guard's token., returned: always, type: str, sample: 20261127T101500Z-1a2b3c4d}
unit: {description: The transient unit (add C(.timer) or C(.service))., returned: always, type: str, sample: yoroi-guard-20261127T101500Z-1a2b3c4d}
dir: {description: The guard directory with the backups, C(manifest.json) and C(restore.sh)., returned: always, type: str}
state: {description: The guard's state afterwards - armed, confirmed or rolled_back., returned: always, type: str}
previous: {description: The state before this call., returned: unless O(state=armed), type: str}
paths: {description: The guarded files (path, backup, existed)., returned: always, type: list, elements: dict}
findings:
  description: One C(GRD-001) finding for O(state=confirmed) and O(state=rolled_back); none when arming.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, PASS, finding

CONTROL = "GRD-001"
EXPECTED = "a fresh login of the automation account succeeds after the change, or the change is rolled back"


def _paths(status):
    return ", ".join(entry["path"] for entry in status.get("paths", [])) or "no files"


def confirmed_finding(status):
    if status["state"] == guard.ROLLED_BACK:
        return finding(
            CONTROL, ERROR, EXPECTED,
            "rolled back: the guard timer fired before the change was confirmed",
            "guard %s restored %s at %s" % (status["token"], _paths(status), status.get("rolled_back_at", "?")),
        )
    return finding(
        CONTROL, PASS, EXPECTED,
        "a fresh login succeeded; change confirmed",
        "guard %s confirmed, timer %s.timer stopped; backups kept in %s" % (status["token"], status["unit"], status["dir"]),
    )


def rolled_back_finding(status, reason, by_timer):
    who = "by the guard timer" if by_timer else "now, by change_guard"
    return finding(
        CONTROL, ERROR, EXPECTED,
        "rolled back: %s" % reason,
        "guard %s restored %s %s at %s; units reloaded: %s" % (
            status["token"], _paths(status), who, status.get("rolled_back_at", "?"), ", ".join(status.get("units", [])) or "none"),
    )


def _label(item, change):
    if change:
        item["subject"] = change
    return item


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["armed", "confirmed", "rolled_back"]),
            token=dict(type="str"),
            paths=dict(type="list", elements="path", default=[]),
            reload_units=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=300),
            change=dict(type="str"),
            reason=dict(type="str", default="the fresh login of the automation account failed"),
            guard_root=dict(type="path", default=guard.GUARD_ROOT),
        ),
        required_if=[
            ("state", "confirmed", ["token"]),
            ("state", "rolled_back", ["token"]),
            ("state", "armed", ["paths"]),
        ],
        supports_check_mode=True,
    )
    params = module.params
    root = params["guard_root"]
    try:
        if params["state"] == "armed":
            if module.check_mode:
                module.exit_json(changed=True, token="", unit="", dir="", state="armed", paths=[], findings=[],
                                 msg="would arm a guard over %s" % ", ".join(params["paths"]))
            armed = guard.arm(module, params["paths"], params["reload_units"], params["timeout"], root)
            status = guard.read_status(armed["token"], root)
            module.exit_json(changed=True, findings=[], **status)

        status = guard.read_status(params["token"], root)
        if params["state"] == "confirmed":
            if module.check_mode:
                module.exit_json(changed=status["state"] == guard.ARMED, previous=status["state"],
                                 findings=[_label(confirmed_finding(status), params["change"])], **status)
            status = guard.confirm(module, params["token"], root)
            item = _label(confirmed_finding(status), params["change"])
            if item["status"] == ERROR:
                module.fail_json(msg="change rolled back: the guard timer fired before the change was confirmed",
                                 findings=[item], changed=False, **status)
            module.exit_json(changed=status["previous"] == guard.ARMED, findings=[item], **status)

        # rolled_back
        if module.check_mode:
            module.exit_json(changed=status["state"] != guard.ROLLED_BACK, previous=status["state"],
                             findings=[_label(rolled_back_finding(status, params["reason"], True), params["change"])], **status)
        status = guard.rollback(module, params["token"], root)
        by_timer = status["previous"] == guard.ROLLED_BACK
        module.exit_json(changed=not by_timer, findings=[_label(rolled_back_finding(status, params["reason"], by_timer), params["change"])], **status)
    except guard.GuardError as exc:
        module.fail_json(msg=str(exc), findings=[finding(CONTROL, ERROR, EXPECTED, "guard failed", str(exc))])


if __name__ == "__main__":
    main()
