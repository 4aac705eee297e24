#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: password_policy
short_description: Enforce password quality, history, lockout and aging on Debian
version_added: 0.1.0
description:
  - Reads the pwquality, faillock, pwhistory and login.defs files, the PAM stack
    (C(/etc/pam.d/common-*)), the pam-auth-update profiles, C(/etc/passwd) and
    C(/etc/shadow) once, and evaluates C(PWD-001) to C(PWD-013) in one pass.
  - pwquality settings go to the drop-in C(/etc/security/pwquality.conf.d/yoroi.conf);
    an active key in C(/etc/security/pwquality.conf), which libpwquality reads after the
    drop-ins, is rewritten in place. C(minclass) is used rather than the C(*credit)
    settings - one number that says how many character classes are needed.
  - The PAM stack is changed only through pam-auth-update, with libpam-pwquality's
    C(pwquality) profile and Yoroi's C(yoroi-faillock-notify), C(yoroi-faillock) and
    C(yoroi-pwhistory) profiles in C(/usr/share/pam-configs). Hand-edited
    C(/etc/pam.d/common-*) files are backed up and regenerated with C(--force).
    pam-auth-update is first run against a staged copy (C(--root)) so check mode shows
    the exact C(common-*) diff, and it is not run when that copy equals the live files.
  - Lockout guard - before the change every module the new stack names must exist; after
    it a temporary account gets a random password through C(chpasswd) (the new password
    stack) and must authenticate through the C(sshd) PAM service (C(login) when there is
    none), and a wrong password must be refused. On any failure every file is restored
    from the backups taken in this run and the findings have status C(error).
  - Password aging (C(PWD-013)) is applied with C(chage) to human accounts with a
    password, except protected ones (root, O(automation_account), C(SUDO_USER),
    O(break_glass_accounts), O(protected_accounts)), which are reported as C(skipped). Accounts
    that hold an SSH key are not aged either (an expired password refuses key logins), and a
    key-only account without a password loses its maximum age (C(chage --maxdays -1)).
  - The O(break_glass_accounts) are exempt from pam_faillock (C(pam_succeed_if) before its
    preauth and authfail lines), so wrong passwords cannot lock them; each gets a C(PWD-007)
    finding with status C(skipped) naming the exemption.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans (pam-auth-update runs on a staged copy only); drift has status C(fail).
  diff_mode:
    support: full
    description: One diff per file that changes, the C(common-*) files included.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.protected
  - yoroi.baseline.concern.guard
  - yoroi.baseline.concern.packages
options:
  minlen:
    description: pwquality minimum length (C(PWD-002)), 8 to 128.
    type: int
    default: 14
  minclass:
    description: pwquality minimum number of character classes (C(PWD-003)), 0 to 4.
    type: int
    default: 3
  dictcheck:
    description: Check new passwords against the cracklib dictionary (C(PWD-004)).
    type: bool
    default: true
  enforce_for_root:
    description: Apply pwquality and pwhistory to root's password changes too (C(PWD-005)).
    type: bool
    default: true
  retry:
    description: Prompts pam_pwquality gives before failing, 1 to 10.
    type: int
    default: 3
  remember:
    description: Previous passwords pam_pwhistory refuses (C(PWD-006)), 1 to 400.
    type: int
    default: 24
  faillock_deny:
    description: Failed logins before pam_faillock locks the account (C(PWD-007)), 1 to 100.
    type: int
    default: 5
  faillock_unlock_time:
    description: Seconds a locked account stays locked (C(PWD-008)); 0 means until an admin runs C(faillock --reset). 0 to 604800.
    type: int
    default: 900
  faillock_fail_interval:
    description: Seconds within which failures are counted, 1 to 604800.
    type: int
    default: 900
  pass_max_days:
    description: login.defs C(PASS_MAX_DAYS) (C(PWD-009)), 1 to 99999.
    type: int
    default: 365
  pass_min_days:
    description: login.defs C(PASS_MIN_DAYS) (C(PWD-010)), below O(pass_max_days).
    type: int
    default: 1
  pass_warn_age:
    description: login.defs C(PASS_WARN_AGE) (C(PWD-011)), below O(pass_max_days).
    type: int
    default: 7
  encrypt_method:
    description: login.defs C(ENCRYPT_METHOD) and the pam_unix hash option (C(PWD-012)).
    type: str
    choices: [YESCRYPT, SHA512]
    default: YESCRYPT
  apply_aging_to_existing:
    description: Run C(chage) on existing human accounts (C(PWD-013)); when false they are only reported.
    type: bool
    default: true
  guard_timeout:
    default: 120
notes:
  - Runs as root (C(become)). Debian 12 and 13; the PAM stack is managed with pam-auth-update.
  - Needs libpam-pwquality installed before an apply; check mode plans without it.
"""

EXAMPLES = r"""
- name: Password policy
  yoroi.baseline.password_policy:
    minlen: 14
    remember: 24
    faillock_deny: 5
    automation_account: "{{ ansible_user }}"
    break_glass_accounts: [breakglass]
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
changed:
  description: Whether any file or account was changed (in check mode, would be).
  returned: always
  type: bool
diff:
  description: Per-file diffs (before/after, with headers), only with C(--diff).
  returned: when diff mode is on and something changes
  type: list
  elements: dict
backups:
  description: Backup files written in this run.
  returned: always
  type: list
  elements: str
pam_auth_update:
  description: What was done about the PAM stack - C(unchanged), C(planned), C(applied), C(applied-forced) or C(rolled-back).
  returned: always
  type: str
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.password_policy import main


if __name__ == "__main__":
    main()
