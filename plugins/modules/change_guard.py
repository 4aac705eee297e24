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

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.change_guard import main


if __name__ == "__main__":
    main()
