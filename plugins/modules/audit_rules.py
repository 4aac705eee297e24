#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_rules
short_description: Install auditd, write Yoroi's audit rules, forward auditd's records to syslog
version_added: 0.1.0
description:
  - Reads the rules.d files, the compiled rules (C(augenrules --check)), the syslog plugin's
    configuration and the SUID/SGID programs on the host once, and evaluates controls
    C(AUD-001) to C(AUD-005) in one pass.
  - C(AUD-001) auditd installed (in this same call when applying), enabled and running; in a
    container, where auditd cannot run, installed and enabled.
  - C(AUD-002) watches on the identity files, sudoers, the authentication log and the login
    records; syscall rules for time changes and kernel module loading, once per ABI the host
    runs (b64 and b32 on a 64-bit host). One finding per group (its subject).
  - C(AUD-003) one rule per SUID/SGID program found on the host (the file systems of
    O(privileged_search_paths), walked without crossing to another file system), sorted by path.
  - C(AUD-004) C(-e 2), immutable until the next boot, when O(immutable) is true.
  - C(AUD-005) the syslog plugin (C(/etc/audit/plugins.d/syslog.conf)) is active, so log
    forwarding carries auditd's records.
  - The rules are one file, C(/etc/audit/rules.d/50-yoroi.rules), written atomically with a
    backup; an unchanged file is not rewritten. It is then compiled and loaded with
    C(augenrules --load). A kernel that cannot load audit rules (a container) is reported -
    the findings are C(skipped) with the reason once the files are right, never a failed run.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only (no apt, no write, no load); drift has status C(fail).
  diff_mode:
    support: full
    description: Shows the rules file and the plugin file before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  immutable:
    description: End the rules with C(-e 2) (C(AUD-004)); changing them then needs a reboot.
    type: bool
    default: true
  syslog:
    description: Activate auditd's syslog plugin (C(AUD-005)).
    type: bool
    default: true
  privileged_search_paths:
    description:
      - Where SUID/SGID programs are looked for, each walked on its own file system only;
        C(/proc), C(/sys), C(/dev) and C(/run) are never walked.
    type: list
    elements: path
    default: [/]
  watches:
    description: "Further watched paths, C({path: key}), written as C(-w PATH -p wa -k KEY) (C(AUD-002))."
    type: dict
    default: {}
notes:
  - Runs as root (C(become)).
  - In a container the kernel's audit subsystem is the host's and refuses rules; the files
    are written and compiled all the same and the findings say that nothing was loaded.
"""

EXAMPLES = r"""
- name: Audit rules, immutable, auditd's records to syslog
  yoroi.baseline.audit_rules:
    packages: [auditd]

- name: Audit only
  yoroi.baseline.audit_rules:
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
files:
  description: The files this run wrote (or would write, in check mode), with their backups.
  returned: always
  type: dict
  sample: {/etc/audit/rules.d/50-yoroi.rules: null}
privileged_programs:
  description: The SUID/SGID programs found on the host, each of which has a rule.
  returned: always
  type: list
  elements: str
load_error:
  description: Why the rules are not loaded in the running kernel, when they are not.
  returned: always
  type: str
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.audit_rules import main


if __name__ == "__main__":
    main()
