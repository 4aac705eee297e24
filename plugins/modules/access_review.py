#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: access_review
short_description: Report who can do what on a host, against the site's approved lists
version_added: 0.1.0
description:
  - Reads C(/etc/passwd), C(/etc/shadow), C(/etc/group), the sudoers files (C(/etc/sudoers) and
    every C(@include)/C(@includedir)), each account's authorized_keys files (the
    C(AuthorizedKeysFile) of C(sshd -T)), walks O(scan_paths) once and reads the dpkg file lists,
    and evaluates seven controls in one pass. It never changes the host - audit and apply report
    the same findings.
  - C(ACR-001) accounts other than root with UID 0 that can log in (an expired one passes).
  - C(ACR-002) every sudoers entry (file and line; C(NOPASSWD) and C(ALL) named in the evidence)
    not in O(approved_sudoers), and C(Defaults !authenticate) lines.
  - C(ACR-003) members of O(privileged_groups) (listed or by primary group) not in
    O(approved_privileged). root and expired accounts pass.
  - C(ACR-004) authorized keys (type, bits, SHA256 fingerprint, file and line, options) not in
    O(approved_keys) for their account. A key file that is a symlink, not a regular file, or owned
    by someone else than the account or root is not read and fails - sshd would read it (it follows
    symlinks; C(StrictModes) checks the owner and modes of the file and its directories), the review
    will not follow a link a user planted. Expired accounts are not read (sshd refuses them).
  - C(ACR-005) DSA keys and RSA keys below O(min_rsa_bits), approved or not. ECDSA (NIST curves)
    and Ed25519 keys pass.
  - C(ACR-006) world-writable files, and world-writable directories without the sticky bit, under
    O(scan_paths), except O(approved_world_writable).
  - C(ACR-007) SUID/SGID files under O(scan_paths) that no dpkg file list names, or whose content
    differs from the package's md5sums, except O(approved_suid).
  - The walk uses C(os.scandir), never follows a symlink, stays on the filesystem of each scan
    path and skips O(skip_paths). At most O(max_reported) failures per control are listed; one more
    finding counts the rest.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode gives the same findings.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
extends_documentation_fragment:
  - yoroi.baseline.concern
options:
  approved_sudoers:
    description:
      - Sudoers entries the site approves, as the findings print them (whitespace is normalized
        before comparing).
    type: list
    elements: str
    default: ["root ALL=(ALL:ALL) ALL", "%sudo ALL=(ALL:ALL) ALL"]
  privileged_groups:
    description: Groups whose members can gain root or read secrets.
    type: list
    elements: str
    default: [root, sudo, wheel, adm, shadow, disk, staff, docker, lxd, incus-admin, libvirt]
  approved_privileged:
    description: "The approved members of each privileged group, C({group: [account, ...]})."
    type: dict
    default: {}
  approved_keys:
    description: "The approved SSH keys of each account, C({account: [SHA256:..., ...]})."
    type: dict
    default: {}
  min_rsa_bits:
    description: RSA keys shorter than this fail C(ACR-005).
    type: int
    default: 2048
  scan_paths:
    description: Where the walk looks for world-writable and SUID/SGID files (a symlink is not walked).
    type: list
    elements: path
    default: [/bin, /boot, /etc, /lib, /lib64, /opt, /root, /sbin, /srv, /usr, /var]
  skip_paths:
    description: Directories the walk does not enter.
    type: list
    elements: path
    default: [/var/lib/docker, /var/lib/containers, /var/lib/lxd, /var/lib/lxc]
  approved_suid:
    description: SUID/SGID files the site approves beside the packaged ones.
    type: list
    elements: path
    default: []
  approved_world_writable:
    description: World-writable paths the site approves.
    type: list
    elements: path
    default: []
  max_reported:
    description: The most failures listed per control; one more finding counts the rest.
    type: int
    default: 50
notes:
  - Runs as root (C(become)); C(/etc/shadow), the sudoers files and other accounts' homes are not
    readable otherwise.
"""

EXAMPLES = r"""
- name: Review access against the site's approved lists
  yoroi.baseline.access_review:
    approved_sudoers:
      - "%sudo ALL=(ALL:ALL) ALL"
      - "yoroi ALL=(ALL:ALL) NOPASSWD:ALL"
    approved_privileged: {sudo: [breakglass]}
    approved_keys: {yoroi: ["SHA256:q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q1q"]}
"""

RETURN = r"""
findings:
  description:
    - One finding per control, and per subject (an account, a sudoers line, a key, a file) -
      C(control), C(status), C(expected), C(actual), C(evidence), C(subject). The review never
      changes the host, so no finding is C(fixed) and there is no C(guard_token).
  returned: always
  type: list
  elements: dict
walk:
  description:
    - What the walk covered - C(entries) seen, C(roots) walked, C(other_filesystems) not entered,
      C(changed_during_walk) directories swapped (for a symlink or another directory) between
      being listed and being opened, not entered.
  returned: always
  type: dict
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.access_review import main


if __name__ == "__main__":
    main()
