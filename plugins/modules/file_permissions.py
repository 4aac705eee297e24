#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_permissions
short_description: Owners and modes of sensitive files, the default umask, home directories and login banners
version_added: 0.1.0
description:
  - Reads the owners and modes of the sensitive files, login.defs, the homes, the banners and
    one walk of O(scan_paths), and evaluates C(PRM-001) to C(PRM-004) and C(BNR-001) in one pass.
  - C(PRM-001) passwd, group, shadow, gshadow (and their backups), sshd_config and the sshd host
    private keys, /etc/crontab, the cron directories and what they hold, sudoers and sudoers.d.
    A mode is only made stricter (a mode already stricter is kept); a wrong owner or group is
    set. One finding per path.
  - C(PRM-002) C(UMASK) in C(/etc/login.defs) and C(/etc/profile.d/yoroi-umask.sh) for shells.
  - C(PRM-003) the homes of root and of the accounts from C(UID_MIN) are made 0750 or stricter;
    the home of a protected account, and a home's owner, are reported and never changed.
  - C(PRM-004) files and directories with no owner or group in O(scan_paths), reported only.
  - C(BNR-001) O(banner_paths) get the SSH banner's text (O(banner_text) with O(contact)) and
    must give no OS details (the C(\s \r \v \m) escapes of agetty, OS names, codenames).
  - A symlink is never followed nor changed, and it is reported. A mode or owner is changed
    through a descriptor opened with C(O_NOFOLLOW) and checked against the C(lstat) read first.
    Banner and login.defs writes are atomic, with a backup of the old file.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only; drift has status C(fail).
  diff_mode:
    support: full
    description: Shows each file written, and each mode or owner changed, before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.protected
options:
  umask:
    description: The default umask (C(PRM-002)), in octal; a stricter one found is kept.
    type: str
    default: "027"
  banner_text:
    description: The banner (C(BNR-001)); C({contact}) is replaced by O(contact), as in the SSH banner.
    type: str
    default: "Authorized use only. Activity on this system is logged and monitored.\nReport security incidents to: {contact}\n"
  contact:
    description: Who to report to (the site's contact); without it C(BNR-001) fails.
    type: str
    default: ""
  banner_paths:
    description: The banner files.
    type: list
    elements: path
    default: [/etc/issue, /etc/issue.net]
  scan_paths:
    description: Where one walk looks for files without an owner or group (C(PRM-004)); it stays on each path's filesystem.
    type: list
    elements: path
    default: [/bin, /boot, /etc, /lib, /lib64, /opt, /root, /sbin, /srv, /usr, /var]
  skip_paths:
    description: Directories the walk does not enter.
    type: list
    elements: path
    default: [/var/lib/docker, /var/lib/containers, /var/lib/lxd, /var/lib/lxc]
  max_reported:
    description: The most C(PRM-004) paths listed; one more finding counts the rest.
    type: int
    default: 50
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: Permissions and banners
  yoroi.baseline.file_permissions:
    contact: "security-desk@example.org"

- name: Audit only
  yoroi.baseline.file_permissions:
  check_mode: true
"""

RETURN = r"""
findings:
  description:
    - One finding per control and subject (a path) - C(control), C(status) (pass, fail, fixed,
      error, skipped), C(expected), C(actual), C(evidence), C(subject). A refused run has an
      C(error) finding for every control of the module.
  returned: always
  type: list
  elements: dict
files:
  description: The files this run wrote (or would write, in check mode), with their backups.
  returned: always
  type: dict
  sample: {/etc/issue: /etc/issue.1234.2026-11-28@01:00:00~}
modes:
  description: The paths whose mode or owner this run changed (or would change), as C(before -> after).
  returned: always
  type: dict
  sample: {/home/alice: "alice:alice 0755 -> alice:alice 0750"}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.file_permissions import main


if __name__ == "__main__":
    main()
