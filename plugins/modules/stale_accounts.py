#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stale_accounts
short_description: Find and disable stale, unsafe and unneeded local accounts
version_added: 0.1.0
description:
  - Reads C(/etc/passwd), C(/etc/shadow), C(/etc/login.defs), C(/etc/shells) and every login
    record the host keeps (C(/var/log/lastlog), C(/var/log/wtmp), and the lastlog2 and wtmpdb
    databases where they exist) once, and evaluates five controls in one pass. C(/var/log/lastlog)
    is read by seeking to the evaluated UIDs (it is sparse). sshd's C(Accepted ... for USER) lines
    in the journal are a login source too - a key login without a terminal leaves no lastlog or
    wtmp record on Debian 12.
  - C(ACC-001) human accounts whose last login is older than O(max_inactive_days).
  - C(ACC-002) human accounts that never logged in and whose password was set more than
    O(max_inactive_days) ago.
  - C(ACC-003) accounts with an empty password field.
  - C(ACC-004) accounts other than root with UID 0.
  - C(ACC-005) system accounts (UID below C(UID_MIN)) with a login shell from C(/etc/shells).
  - A stale or never-used account that holds a key in C(~/.ssh/authorized_keys) is reported, not
    changed, unless the journal reaches back over O(max_inactive_days) and still shows no login.
  - Each kind of finding is handled by its O(policy) action. An account that is already
    disabled (expired) passes, since it cannot log in by any method.
  - Protected accounts are never changed and are reported as C(skipped) - root, the
    account Ansible connects as (O(automation_account) and C(SUDO_USER)),
    O(break_glass_accounts) and O(protected_accounts).
  - Before an account is removed, its home directory, crontab and mail spool are archived
    to O(archive_dir) (mode 0600) and the archive path is given in the finding.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only; findings for offending accounts have status C(fail).
  diff_mode:
    support: full
    description: Shows each affected account's state before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.protected
  - yoroi.baseline.concern.guard
options:
  max_inactive_days:
    description: Days without a login after which a human account is stale.
    type: int
    default: 90
  policy:
    description: The action per kind of finding.
    type: dict
    default: {}
    suboptions:
      stale:
        description:
          - For C(ACC-001). C(lock) locks the password and expires the account (no login by
            any method; undo with C(usermod --unlock --expiredate '')); C(expire) expires
            it and keeps the password hash; C(remove) archives then deletes it.
        type: str
        choices: [report, lock, expire, remove]
        default: lock
      never_used:
        description: For C(ACC-002); as O(policy.stale).
        type: str
        choices: [report, lock, expire, remove]
        default: lock
      empty_password:
        description: For C(ACC-003); as O(policy.stale).
        type: str
        choices: [report, lock, expire, remove]
        default: lock
      extra_uid0:
        description:
          - For C(ACC-004). Removal is not offered - C(userdel) cannot tell such an account
            from root, and its home is often C(/root).
        type: str
        choices: [report, lock, expire]
        default: lock
      system_shell:
        description: For C(ACC-005). C(nologin) sets the shell to O(nologin_shell).
        type: str
        choices: [report, nologin]
        default: nologin
  archive_dir:
    description: Where home directories, crontabs and mail of removed accounts are archived.
    type: path
    default: /var/backups/yoroi/accounts
  nologin_shell:
    description: The shell given to system accounts by the C(nologin) action.
    type: path
    default: /usr/sbin/nologin
  guard_timeout:
    description:
      - Seconds after which the lockout guard puts C(/etc/passwd), C(/etc/shadow), C(/etc/group)
        and C(/etc/gshadow) back by itself, unless C(yoroi.baseline.change_guard) confirms a fresh
        login of the automation account first. 0 changes accounts without a guard.
      - A removed account's home is not brought back by the guard; its archive is in O(archive_dir).
    type: int
    default: 120
notes:
  - Runs as root (C(become)); C(/etc/shadow) is not readable otherwise.
"""

EXAMPLES = r"""
- name: Lock accounts unused for 90 days, remove those never used
  yoroi.baseline.stale_accounts:
    max_inactive_days: 90
    policy:
      stale: lock
      never_used: remove
    automation_account: "{{ ansible_user }}"
    break_glass_accounts: [breakglass]

- name: Audit only
  yoroi.baseline.stale_accounts:
    policy: {stale: report, never_used: report, empty_password: report, extra_uid0: report, system_shell: report}
  check_mode: true
"""

RETURN = r"""
findings:
  description:
    - One finding per control (and per subject where a control is about one account or
      file) - C(control), C(status) (pass, fail, fixed, error, skipped), C(expected),
      C(actual), C(evidence), C(subject). A refused run has an C(error) finding for every
      control of the module.
  returned: always
  type: list
  elements: dict
guard_token:
  description: The lockout guard armed for this change; confirm it after a fresh login.
  returned: when something changed (not in check mode) and O(guard_timeout) is not 0
  type: str
guard:
  description:
    - The armed guard - C(token), C(unit) (its transient timer), C(dir) (its backups),
      C(timeout) and C(change) (what changed); the C(yoroi.baseline.lockout_guard) role reads it.
  returned: with guard_token
  type: dict
archives:
  description: Archives written for removed accounts.
  returned: always
  type: dict
  sample: {bob: /var/backups/yoroi/accounts/bob-20261127T101500Z.tar.gz}
protected:
  description: Every account the module would not change.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.stale_accounts import main


if __name__ == "__main__":
    main()
