#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_hardening
short_description: Harden kernel parameters, block unused kernel modules, turn core dumps off
version_added: 0.1.0
description:
  - Reads C(/proc/sys), C(/proc/modules), the modprobe.d and sysctl.d files and the core dump
    settings once, and evaluates controls C(KRN-001) to C(KRN-008) in one pass.
  - C(KRN-001) network parameters, C(KRN-002) IPv6 router advertisements, C(KRN-003) kernel
    information and process isolation, C(KRN-004) ASLR, one finding per key (its subject). They
    are persisted in one file, C(/etc/sysctl.d/60-yoroi.conf), and written to C(/proc/sys) key
    by key (what C(sysctl -p) of that file does). A key the running kernel does not have is
    C(skipped) with the reason; a key the running kernel refuses to set is C(fail) with the
    reason, not a failed run. In a container (the kernel is the host's, C(/proc/sys) read-only)
    such a key is judged on the file and is C(skipped) once the file is right. A key that a
    sysctl file read later at boot sets to another value fails, naming that file.
  - C(KRN-005) to C(KRN-007) modules, one finding per module - C(install NAME /bin/false) and
    C(blacklist NAME) in C(/etc/modprobe.d/yoroi.conf). A module loaded now is reported
    (C(fail)), never unloaded.
  - C(KRN-008) core dumps - C(* hard core 0) in C(/etc/security/limits.d/yoroi.conf),
    C(Storage=none) and C(ProcessSizeMax=0) in C(/etc/systemd/coredump.conf.d/yoroi.conf), and
    C(fs.suid_dumpable = 0).
  - Every file is written atomically with a backup of the old one; an unchanged file is not
    rewritten.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only; drift has status C(fail).
  diff_mode:
    support: full
    description: Shows each file, and the running values that change, before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
options:
  sysctl:
    description:
      - "Kernel parameters merged over the defaults, C({key: value}). A value of C(null) takes
        a default key out of management (its file line goes, the running value stays)."
      - Keys in dotted (C(net.ipv4.ip_forward)) or slashed form, as C(sysctl) reads them.
    type: dict
    default: {}
  ipv6_router_advertisements:
    description: Accept IPv6 router advertisements (C(accept_ra) is then not managed, C(KRN-002) skipped).
    type: bool
    default: false
  blocked_modules:
    description: Modules that cannot be loaded (C(KRN-005), and C(KRN-006) for dccp, sctp, rds, tipc).
    type: list
    elements: str
    default: [cramfs, freevxfs, hfs, hfsplus, jffs2, udf, dccp, sctp, rds, tipc]
  block_usb_storage:
    description: Block C(usb-storage) (C(KRN-007)).
    type: bool
    default: true
  block_firewire:
    description: Block C(firewire-core) (C(KRN-007)).
    type: bool
    default: true
  disable_core_dumps:
    description:
      - Write the limits and systemd-coredump files of C(KRN-008). When false they are not
        managed (C(skipped)); C(fs.suid_dumpable) is a key of O(sysctl).
    type: bool
    default: true
notes:
  - Runs as root (C(become)).
  - In a container, C(/proc/sys) is read-only, so no running value changes; each differing
    one is reported with the reason and the value read, and the files are written all the same.
"""

EXAMPLES = r"""
- name: Harden the kernel; this host routes
  yoroi.baseline.kernel_hardening:
    sysctl:
      net.ipv4.ip_forward: 1
      net.ipv4.conf.all.send_redirects: null

- name: Audit only
  yoroi.baseline.kernel_hardening:
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
  sample: {/etc/sysctl.d/60-yoroi.conf: /etc/sysctl.d/60-yoroi.conf.1234.2026-11-28@01:00:00~}
refused_keys:
  description: Keys the running kernel refused to set, with the reason.
  returned: always
  type: dict
  sample: {kernel.dmesg_restrict: Read-only file system}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.kernel_hardening import main


if __name__ == "__main__":
    main()
