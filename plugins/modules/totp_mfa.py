#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: totp_mfa
short_description: Require a TOTP code for SSH logins (and optionally sudo) of chosen groups
version_added: 0.1.0
description:
  - Reads the MFA groups' members and their C(~/.google_authenticator) files (options only,
    never the secret), C(/etc/pam.d/sshd), C(/etc/pam.d/sudo) and the composed sshd
    configuration once, and evaluates C(MFA-001) to C(MFA-005) in one pass.
  - sshd gets its own drop-in (O(dropin), C(Match) blocks only) - exemptions first, then
    C(Match Group) with C(KbdInteractiveAuthentication yes) and C(AuthenticationMethods)
    C(keyboard-interactive) (O(mode=password), PAM asks the password then the code) or
    C(publickey,keyboard-interactive) (O(mode=publickey), PAM asks only the code).
  - The PAM block (between marker comments, so a second run finds it) lets non-members
    skip with C(pam_succeed_if user notingroup), and exempt users from exempt addresses
    skip with C(pam_access) and O(access_file).
  - Enrolment - a member with no secret file gets one (20 random bytes from the OS, base32),
    five scratch codes and C(RATE_LIMIT 3 30), C(WINDOW_SIZE 3), C(DISALLOW_REUSE),
    C(TOTP_AUTH), created as the user with mode 0400 through a descriptor of the home
    directory opened without following links; a home that is a symlink or belongs to
    another user is refused. An existing file is never replaced, except one this module
    created whose hand-off was never confirmed (below).
  - Hand-off - the new secrets come back in the result (RV(handoff)), never read again from
    the user's directory. The collection's action plugin of the same name takes them out
    on the controller, writes C(<enrollment_dir>/<inventory_hostname>/<user>.otpauth)
    (0600) and calls this module again with O(confirm); only the findings and the names
    reach the task result.
  - Pending enrolments - until confirmed, an enrolment is recorded in
    C(/var/lib/yoroi/mfa/pending/<user>) (root, 0600, the SHA-256 of the secret). A pending
    enrolment counts as not enrolled (C(MFA-002)), and the next run replaces its secret
    (nobody holds it) and hands it off again.
  - Grace period - before O(deadline) the TOTP line has C(nullok), so unenrolled members
    still log in (reported C(MFA-002) fail); from the deadline on, C(nullok) is dropped.
    The deadline takes effect at the first run on or after it.
  - Lockout guard - before writing, the candidate configuration is composed in a temporary
    directory (the live C(sshd_config) and drop-ins plus the new drop-in), checked with
    C(sshd -t), and the SSH access engine (C(module_utils/_access.py)) asks C(sshd -T -C) per
    account and client address whether O(automation_account) (and the C(SUDO_USER) of the
    run) keeps a key-only way in from every address it uses, and each of
    O(break_glass_accounts) one way in it can complete - AllowUsers, AllowGroups,
    DenyUsers, DenyGroups, the login shell and PermitRootLogin included; otherwise
    nothing is changed and the module fails with the reason. An automation account inside an MFA
    group without an exemption is refused outright. After the checks, with O(guard_timeout),
    the lockout guard is armed before the first write and its token returned, so the role
    confirms the change after a fresh login or lets the host restore it.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads, composes the candidate and runs C(sshd -t)/C(sshd -T) on it; writes nothing; drift has status C(fail).
  diff_mode:
    support: full
    description: One diff per configuration file; enrolments are listed, never their content.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.guard
  - yoroi.baseline.concern.packages
options:
  groups:
    description: Groups whose members must present a TOTP code.
    type: list
    elements: str
    required: true
  mode:
    description: C(password) - password and code through keyboard-interactive; C(publickey) - a key, then the code.
    type: str
    choices: [password, publickey]
    default: password
  deadline:
    description: End of the grace period (YYYY-MM-DD); empty means no grace period.
    type: str
    default: ""
  enroll:
    description: Create a secret for every member without one.
    type: bool
    default: true
  exemptions:
    description: Accounts that skip the code, and only with these methods from these addresses.
    type: list
    elements: dict
    default: []
    suboptions:
      user: {description: The account., type: str, required: true}
      methods: {description: "sshd AuthenticationMethods for it, e.g. C(publickey).", type: str, default: publickey}
      from: {description: Addresses or networks; empty means any., type: list, elements: str, default: []}
  sudo:
    description: Also require the code for sudo (C(MFA-005)); when false a block written before is removed.
    type: bool
    default: false
  dropin:
    description: The sshd drop-in this module owns.
    type: path
    default: /etc/ssh/sshd_config.d/50-yoroi-mfa.conf
  access_file:
    description: The pam_access file listing exemptions.
    type: path
    default: /etc/security/yoroi-mfa-exempt.conf
  enrollment_dir:
    description:
      - Controller directory for the otpauth URIs of new enrolments, used by the action
        plugin on the controller (the module ignores it); empty turns O(enroll) off, as a new
        secret would reach nobody.
    type: str
    default: ""
  issuer:
    description: The issuer named in the otpauth URIs (used on the controller).
    type: str
    default: Yoroi
  confirm:
    description:
      - Sent by the action plugin after the URIs are saved - the enrolments (user and
        secret digest) whose pending record is removed. With it, nothing else is done.
    type: list
    elements: dict
    suboptions:
      user: {description: The enrolled account., type: str, required: true}
      digest: {description: SHA-256 of the secret the controller saved., type: str, required: true}
  guard_timeout:
    description:
      - Seconds after which the lockout guard restores the sshd and PAM files and reloads sshd,
        unless C(yoroi.baseline.change_guard) confirms a fresh login first; 0 turns the guard off.
        Secret files are not guarded - they are never replaced, only created.
    type: int
    default: 0
notes:
  - On a host with no SSH server (no C(sshd)) and O(sudo=false), every MFA control is reported as C(skipped) and nothing is changed.
  - Runs as root (C(become)). Needs libpam-google-authenticator installed before an apply;
    check mode plans without it and says so.
"""

EXAMPLES = r"""
- name: TOTP for the ops group, grace until the end of March
  yoroi.baseline.totp_mfa:
    groups: [mfa-users]
    mode: password
    deadline: "2027-03-31"
    automation_account: yoroi
    break_glass_accounts: [breakglass]
    exemptions:
      - {user: yoroi, methods: publickey, from: ["127.0.0.1", "10.0.0.0/8"]}
  register: mfa
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
enrolled:
  description: Members enrolled in this run, with the path of their new secret file (never the secret).
  returned: always
  type: list
  elements: dict
  sample: [{user: alice, path: /home/alice/.google_authenticator}]
handoff:
  description:
    - The new secrets, for the controller only (user, secret, digest). The action plugin
      removes this key before the result reaches a log, an event or a report.
  returned: when something was enrolled
  type: list
  elements: dict
confirmed:
  description: With O(confirm), the users whose pending enrolment was cleared.
  returned: with O(confirm)
  type: list
  elements: str
nullok:
  description: Whether unenrolled members can still log in (before the deadline).
  returned: always
  type: bool
members:
  description: Members of the MFA groups.
  returned: always
  type: list
  elements: str
backups:
  description: Backup files written in this run.
  returned: always
  type: list
  elements: str"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.totp_mfa import main


if __name__ == "__main__":
    main()
