#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: listening_services
short_description: Report listening services not on the site's allowlist; stop the units the policy names
version_added: 0.1.0
description:
  - Reads C(/proc/net/{tcp,tcp6,udp,udp6}), the processes that own each listening socket
    (C(/proc/PID/fd)) and their systemd units (C(/proc/PID/cgroup)) once.
  - C(SVC-001) every listening socket is on the allowlist (port, protocol and, when given,
    the process name); each other listener is one C(fail) finding naming address, port,
    process and unit. Loopback-only listeners pass when O(allow_loopback) is true.
    Nothing is stopped for C(SVC-001).
  - C(SVC-002) each unit of O(stop_units) is stopped and disabled (C(systemctl stop),
    C(systemctl disable)). sshd's units and any unit listening on an SSH port (C(sshd -T)) are
    refused, never stopped.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only; a unit still running has status C(fail).
  diff_mode:
    support: none
    description: The findings and O(stop_units) say what changes; no file is written.
extends_documentation_fragment:
  - yoroi.baseline.concern
options:
  allowlist:
    description: The listeners the site allows.
    type: list
    elements: dict
    default: [{port: 22, protocol: tcp, process: sshd}]
    suboptions:
      port: {description: The port., type: int, required: true}
      protocol: {description: tcp or udp., type: str, default: tcp, choices: [tcp, udp]}
      process: {description: The process name (as C(/proc/PID/comm)); any process when not given., type: str}
  allow_loopback:
    description: Listeners bound only to a loopback address pass C(SVC-001).
    type: bool
    default: true
  stop_units:
    description: systemd units to stop and disable (C(SVC-002)); C(name) means C(name.service).
    type: list
    elements: str
    default: []
notes:
  - Runs as root (C(become)), so that every process's sockets can be read.
"""

EXAMPLES = r"""
- name: Audit listeners, allow ssh and a web server
  yoroi.baseline.listening_services:
    allowlist:
      - {port: 22, process: sshd}
      - {port: 443, process: nginx}
  check_mode: true
"""

RETURN = r"""
findings:
  description: One finding per control (per listener for SVC-001 failures, per unit for SVC-002).
  returned: always
  type: list
  elements: dict
listening:
  description: Every listening socket with its processes and units.
  returned: always
  type: list
  sample: [{protocol: tcp, address: 0.0.0.0, port: 22, processes: [sshd], units: [ssh.service]}]
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.listening_services import main


if __name__ == "__main__":
    main()
