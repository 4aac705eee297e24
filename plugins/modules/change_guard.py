#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: change_guard
short_description: Arm, confirm, roll back or audit the lockout guard of a change that can cut access
version_added: 0.1.0
description:
  - The role side of the lockout guard (DESIGN invariant 5, control C(GRD-001)). A module
    that makes a risky change (sshd, PAM, MFA, firewall) arms a guard itself and returns
    its C(guard_token); a role that changes files with other modules arms one with
    O(state=armed) first.
  - An armed guard has backed up the files to C(/var/lib/yoroi/guard/<token>/) and
    scheduled the transient systemd timer C(yoroi-guard-<token>.timer), which restores the
    files and reloads the units after the timeout unless the change is confirmed. A reboot
    cancels that timer, so arming also installs the persistent unit
    C(yoroi-guard-boot.service), which restores every guard still armed at boot.
  - O(state=confirmed) after a fresh login of the automation account succeeded - stops the
    timer and keeps the backups. C(GRD-001) passes. If the timer fired first, the change is
    already undone; the finding is C(error) and the task fails. When O(connection) does not
    go through sshd and PAM (local, podman, docker, chroot...), the login proved nothing;
    the change is kept and the timer stopped all the same (else every change made over
    such a connection would silently undo itself), but C(GRD-001) is C(skipped)
    ("not proven") and the module warns.
  - O(state=rolled_back) after the fresh login failed and the host is reachable again -
    checks that the timer restored the files (or restores them now when it has not fired
    yet). C(GRD-001) is C(error) with "rolled back" and the reason; the task itself does not
    fail, so the role can fail the host with its own message.
  - A restore that could not put a file back or reload a unit leaves the guard
    C(restore_failed) (never C(rolled_back)), with the failed paths and units; every state
    reports it as an C(error) finding.
  - O(state=audit) reads only (also outside check mode) and reports C(GRD-002) - one
    C(pass) when no guard is left unresolved, else one finding per guard - C(fail) for a
    guard still armed past its deadline (its timer was lost), C(error) for a failed restore.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reports what it would do; no timer is armed, stopped or fired.
  diff_mode:
    support: none
    description: Changes no file of its own; the guarded change shows its diff in the module that made it.
options:
  state:
    description: What to do with the guard.
    type: str
    required: true
    choices: [armed, confirmed, rolled_back, audit]
  token:
    description: The guard's token, as returned when it was armed. Required for O(state=confirmed) and O(state=rolled_back).
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
  connection:
    description:
      - With O(state=confirmed), the Ansible connection the fresh login used (C(ansible_connection)).
      - Only C(ssh), C(paramiko), C(paramiko_ssh) and C(smart) go through sshd and PAM and prove the change.
    type: str
    default: ssh
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

# Once per host and run, in check mode too: guards nothing resolved (GRD-002)
- name: Report lockout guards left unresolved
  yoroi.baseline.change_guard:
    state: audit

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
token:
  description: The guard's token.
  returned: unless O(state=audit)
  type: str
  sample: 20261127T101500Z-1a2b3c4d
unit:
  description: The transient unit (add C(.timer) or C(.service)).
  returned: unless O(state=audit)
  type: str
  sample: yoroi-guard-20261127T101500Z-1a2b3c4d
dir:
  description: The guard directory with the backups, C(manifest.json) and C(restore.sh).
  returned: unless O(state=audit)
  type: str
state:
  description: The guard's state afterwards - armed, confirmed, rolled_back or restore_failed.
  returned: unless O(state=audit)
  type: str
previous:
  description: The state before this call.
  returned: with O(state=confirmed) and O(state=rolled_back)
  type: str
paths:
  description: The guarded files (path, backup, existed).
  returned: unless O(state=audit)
  type: list
  elements: dict
failed:
  description: With C(restore_failed), what the restore could not do (kind C(file) or C(unit), and name).
  returned: unless O(state=audit)
  type: list
  elements: dict
leftover:
  description: With O(state=audit), the tokens of the guards left unresolved.
  returned: with O(state=audit)
  type: list
  elements: str
findings:
  description: >-
    One C(GRD-001) finding for O(state=confirmed) and O(state=rolled_back); none when
    arming; C(GRD-002) findings for O(state=audit).
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.yoroi.baseline.plugins.module_utils import _guard as guard
from ansible_collections.yoroi.baseline.plugins.module_utils._findings import ERROR, FAIL, PASS, SKIPPED, finding

CONTROL = "GRD-001"
EXPECTED = "a fresh login of the automation account succeeds after the change, or the change is rolled back"
LEFTOVER_CONTROL = "GRD-002"
LEFTOVER_EXPECTED = "no lockout guard left armed past its deadline, and no failed restore"


def _paths(status):
    return ", ".join(entry["path"] for entry in status.get("paths", [])) or "no files"


def restore_failed_finding(control, expected, status):
    failed = ", ".join("%s %s" % (item["kind"], item["name"]) for item in status.get("failed", [])) or "?"
    return finding(
        control, ERROR, expected,
        "restore failed: could not put back or reload %s" % failed,
        "guard %s (by %s at %s) left the host partly changed; fix it by hand, then "
        "'sh %s/restore.sh --force' retries the restore" % (
            status["token"], status.get("restored_by", "?"), status.get("restore_failed_at", "?"), status["dir"]),
    )


def unproven_finding(status, connection):
    return finding(
        CONTROL, SKIPPED, EXPECTED,
        "not proven: connection %s does not go through sshd and PAM" % connection,
        "guard %s: change kept and timer %s.timer stopped without proof; log in over SSH to "
        "prove it (backups in %s)" % (status["token"], status["unit"], status["dir"]),
    )


def leftover_findings(found, now):
    """GRD-002: one pass when nothing is left, else one finding per guard left."""
    if not found:
        return [finding(LEFTOVER_CONTROL, PASS, LEFTOVER_EXPECTED, "no lockout guard left unresolved")]
    items = []
    for status in found:
        if status["state"] == guard.RESTORE_FAILED:
            item = restore_failed_finding(LEFTOVER_CONTROL, LEFTOVER_EXPECTED, status)
        else:
            item = finding(
                LEFTOVER_CONTROL, FAIL, LEFTOVER_EXPECTED,
                "armed %d s past its deadline: the change over %s was neither confirmed nor restored"
                % (now - guard.deadline(status), _paths(status)),
                "guard %s armed at %s (timeout %s s); its timer is gone. Keep the change with "
                "change_guard state=confirmed, or undo it with 'sh %s/restore.sh --force'" % (
                    status["token"], status["created"], status.get("timeout", "?"), status["dir"]),
            )
        item["subject"] = status["token"]
        items.append(item)
    return items


def confirmed_finding(status):
    if status["state"] == guard.RESTORE_FAILED:
        return restore_failed_finding(CONTROL, EXPECTED, status)
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
    if status["state"] == guard.RESTORE_FAILED:
        return restore_failed_finding(CONTROL, EXPECTED, status)
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


def audit(module, root):
    """GRD-002, read-only in every mode; a guard root this user cannot read is skipped."""
    now = time.time()
    try:
        found = guard.leftover(root, now)
    except (OSError, ValueError, guard.GuardError) as exc:
        module.exit_json(changed=False, leftover=[], findings=[finding(
            LEFTOVER_CONTROL, SKIPPED, LEFTOVER_EXPECTED, "cannot read the lockout guards: %s" % exc)])
    module.exit_json(changed=False, leftover=[s["token"] for s in found], findings=leftover_findings(found, now))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["armed", "confirmed", "rolled_back", "audit"]),
            token=dict(type="str", no_log=False),  # an identifier, not a secret
            paths=dict(type="list", elements="path", default=[]),
            reload_units=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=300),
            change=dict(type="str"),
            connection=dict(type="str", default="ssh"),
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
    if params["state"] == "audit":
        audit(module, root)
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
            proven = guard.proves_access(params["connection"])
            if module.check_mode:
                module.exit_json(changed=status["state"] == guard.ARMED, previous=status["state"],
                                 findings=[_label(confirmed_finding(status), params["change"])], **status)
            status = guard.confirm(module, params["token"], root)
            item = _label(confirmed_finding(status), params["change"])
            if item["status"] == ERROR:
                module.fail_json(msg="change %s: %s" % (status["state"].replace("_", " "), item["actual"]),
                                 findings=[item], changed=False, **status)
            if not proven:
                item = _label(unproven_finding(status, params["connection"]), params["change"])
                module.warn("the %s change is kept but not proven: a fresh login over connection %s does not go "
                            "through sshd and PAM; log in over SSH to check it" % (params["change"] or "guarded", params["connection"]))
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
