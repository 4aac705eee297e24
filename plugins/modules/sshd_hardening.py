#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_hardening
short_description: Harden sshd with one validated drop-in, refusing any change that locks out the automation
version_added: 0.1.0
description:
  - Reads the live effective configuration once (C(sshd -T)), the algorithms the installed
    OpenSSH supports (C(ssh -Q cipher|mac|kex)), C(/etc/ssh/sshd_config), the drop-in, the
    banner file and C(/etc/group), and evaluates C(SSH-001) to C(SSH-012) in one pass.
  - Settings go to the drop-in O(dropin_path) (C(00-yoroi.conf)), read first through the
    C(Include /etc/ssh/sshd_config.d/*.conf) at the top of Debian's C(sshd_config); sshd keeps
    the first value it reads. A main file without that Include, or with a managed keyword set
    before it (or the Include inside a Match block), gets the Include moved or added at the
    top; the findings of the affected controls say so.
  - Ciphers, MACs and key exchange algorithms are the intersection of O(ciphers), O(macs) and
    O(kex_algorithms) with C(ssh -Q), in the order given (post-quantum hybrid key exchange
    first where the OpenSSH has it).
  - The groups in O(allow_groups) are created when missing; the automation account, the
    break-glass accounts (with O(add_protected_to_allow_group)) and O(allow_group_members) are
    added to the first of them unless already in one.
  - Lockout pre-check, before anything changes - the candidate (main file, every live drop-in
    and the new drop-in) must pass C(sshd -t), then C(sshd -T -C user=...,host=...,addr=...)
    for the automation account (address of the current SSH connection) and each existing
    break-glass account must leave them allowed (AllowUsers, AllowGroups, DenyUsers,
    DenyGroups, the login shell, PermitRootLogin for UID 0) with an authentication method
    they have (the automation account - publickey with an authorized key; break-glass -
    O(break_glass_methods)). Otherwise the module fails naming the account and the setting,
    and nothing is changed.
  - When files change (not in check mode), a lockout guard is armed first (see
    C(yoroi.baseline.change_guard)) and its token returned as C(guard_token) - the caller
    proves a fresh login and confirms it, or the host restores the files by itself after
    O(guard_timeout) seconds. Each write is validated with C(sshd -t); then C(systemctl reload)
    of O(service_name).
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Plans, runs the pre-check on the staged candidate and reports the findings it would give.
  diff_mode:
    support: full
    description: Diffs of the drop-in, C(sshd_config) (when its Include moves), the banner and group memberships.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.guard
options:
  permit_root_login:
    description: PermitRootLogin (C(SSH-001) passes only with C(no)).
    type: str
    choices: ["no", prohibit-password, forced-commands-only]
    default: "no"
  max_auth_tries: {description: MaxAuthTries (C(SSH-003))., type: int, default: 4}
  login_grace_time: {description: LoginGraceTime in seconds (C(SSH-004))., type: int, default: 60}
  client_alive_interval: {description: ClientAliveInterval in seconds (C(SSH-005))., type: int, default: 300}
  client_alive_count_max: {description: ClientAliveCountMax (C(SSH-005))., type: int, default: 3}
  ciphers:
    description: Strong ciphers, most preferred first (C(SSH-006)); those C(ssh -Q cipher) lists are written.
    type: list
    elements: str
    default:
      - chacha20-poly1305@openssh.com
      - aes256-gcm@openssh.com
      - aes128-gcm@openssh.com
      - aes256-ctr
      - aes192-ctr
      - aes128-ctr
  macs:
    description: Strong MACs, most preferred first (C(SSH-007)).
    type: list
    elements: str
    default:
      - hmac-sha2-512-etm@openssh.com
      - hmac-sha2-256-etm@openssh.com
      - umac-128-etm@openssh.com
      - hmac-sha2-512
      - hmac-sha2-256
  kex_algorithms:
    description: Strong key exchange algorithms, most preferred first (C(SSH-008)).
    type: list
    elements: str
    default:
      - mlkem768x25519-sha256
      - sntrup761x25519-sha512
      - sntrup761x25519-sha512@openssh.com
      - curve25519-sha256
      - curve25519-sha256@libssh.org
      - ecdh-sha2-nistp521
      - ecdh-sha2-nistp384
      - ecdh-sha2-nistp256
      - diffie-hellman-group18-sha512
      - diffie-hellman-group16-sha512
      - diffie-hellman-group-exchange-sha256
      - diffie-hellman-group14-sha256
  allow_groups:
    description: AllowGroups (C(SSH-009)); created when missing. Empty leaves AllowGroups unset (and C(SSH-009) failing).
    type: list
    elements: str
    default: [ssh-users]
  allow_group_members:
    description: Further accounts to add to the first allowed group.
    type: list
    elements: str
    default: []
  add_protected_to_allow_group:
    description:
      - Add the automation account and the break-glass accounts to the first allowed group.
      - When false, the pre-check refuses a configuration that leaves them out.
    type: bool
    default: true
  break_glass_methods:
    description: How break-glass accounts log in; the pre-check needs one of them to stay usable.
    type: list
    elements: str
    choices: [password, publickey]
    default: [password]
  banner_path: {description: The banner file (C(SSH-010))., type: path, default: /etc/issue.net}
  banner_text:
    description: The banner; C({contact}) is replaced by O(contact).
    type: str
    default: "Authorized use only. Activity on this system is logged and monitored.\nReport security incidents and suspicious activity to: {contact}\n"
  contact: {description: The site's reporting contact; C(SSH-010) fails without it., type: str, default: ""}
  x11_forwarding: {description: X11Forwarding (C(SSH-011))., type: bool, default: false}
  allow_agent_forwarding: {description: AllowAgentForwarding (C(SSH-012))., type: bool, default: false}
  allow_tcp_forwarding: {description: AllowTcpForwarding (C(SSH-012))., type: bool, default: false}
  extra_settings:
    description: Further sshd keywords for the drop-in (not a managed one, not Match or Include).
    type: dict
    default: {}
  service_name: {description: The sshd unit to reload., type: str, default: ssh}
  guard_root: {description: Where the guard keeps its backups., type: path, default: /var/lib/yoroi/guard}
  sshd_config: {description: The main sshd configuration file., type: path, default: /etc/ssh/sshd_config}
  dropin_path: {description: The drop-in Yoroi writes., type: path, default: /etc/ssh/sshd_config.d/00-yoroi.conf}
  client_address:
    description: The address the automation connects from, for C(Match Address); by default from C(SSH_CONNECTION).
    type: str
  skip_lockout_check:
    description:
      - FOR TESTS ONLY - write even when the pre-check finds a lockout (the guard still rolls it back).
    type: bool
    default: false
  guard_timeout:
    default: 300
notes:
  - On a host with no SSH server (no C(sshd)), every SSH control is reported as C(skipped) and nothing is changed.
  - Runs as root (C(become)) on hosts with systemd and OpenSSH 8.2 or later.
  - Every account that logs in over SSH today (a login shell, and a password hash or an
    authorized key) and that the new configuration would refuse gets its own C(SSH-009)
    finding (C(subject) the account) - C(fail) in check mode, so an audit lists who would
    lose SSH access before any apply; C(fixed) once applied.
"""

EXAMPLES = r"""
- name: Harden sshd
  yoroi.baseline.sshd_hardening:
    allow_groups: [ssh-users]
    automation_account: yoroi
    break_glass_accounts: [breakglass]
    contact: "security-desk@example.org"
  register: sshd

- name: Audit only
  yoroi.baseline.sshd_hardening:
    contact: "security-desk@example.org"
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
algorithms:
  description: The Ciphers, MACs and KexAlgorithms written (the supported strong ones).
  returned: always
  type: dict
main_config_note:
  description: What was wrong with the main file's Include, or empty.
  returned: always
  type: str
group_changes:
  description: Groups created and accounts added, as lines.
  returned: always
  type: list
  elements: str
precheck: {description: The accounts checked with C(sshd -T -C) and the problems found., returned: always, type: dict}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.sshd_hardening import main


if __name__ == "__main__":
    main()
