#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_collector
short_description: A central rsyslog collector - RELP with TLS from permitted peers, a tree per host, rotation
version_added: 0.1.0
description:
  - Reads the collector's rsyslog configuration, the TLS files, the listening sockets, the
    per-host tree and the rotation policy once and evaluates controls C(LOG-010) to C(LOG-012).
  - C(LOG-010) C(/etc/rsyslog.d/10-yoroi-collector.conf) - imrelp with TLS on O(port),
    C(tls.authMode=name) and only O(permitted_peers) (certificate names, rsyslog's C(*)
    wildcards allowed); rsyslog runs and listens on the port. Checked with C(rsyslogd -N1)
    before it replaces the live one.
  - C(LOG-011) lines go to C(/var/log/remote/HOST/syslog.log), one tree per host; each
    permitted peer (without a wildcard) must have written within O(max_silence_hours); the
    time of each host's last line is the evidence.
  - C(LOG-012) C(/etc/logrotate.d/yoroi-remote) rotates them daily and keeps O(retention_days)
    (checked with C(logrotate -d) first).
  - The private key is copied by the role to C(/etc/yoroi/log-collector/key.pem) (root, 0600, no_log).
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only.
  diff_mode:
    support: full
    description: Shows the configuration files written (not the certificates).
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  port:
    description: The RELP port.
    type: int
    default: 2514
  permitted_peers:
    description: The certificate names of the hosts allowed to send (their SAN or CN).
    type: list
    elements: str
    default: []
  ca_cert:
    description: The CA certificate (PEM text) that signed the clients' certificates.
    type: str
    default: ""
  cert:
    description: The collector's certificate (PEM text); its name is what the clients verify.
    type: str
    default: ""
  retention_days:
    description: Days the rotated per-host logs are kept (1 to 3650).
    type: int
    default: 365
  max_silence_hours:
    description: Hours a permitted peer may stay silent before C(LOG-011) fails; 0 only requires a line ever.
    type: int
    default: 24
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: The branch's collector
  yoroi.baseline.log_collector:
    packages: [rsyslog, rsyslog-relp, logrotate]
    permitted_peers: ["*.branch.example.org"]
    ca_cert: "{{ lookup('ansible.builtin.file', '/etc/yoroi/pki/ca.pem') }}"
    cert: "{{ lookup('ansible.builtin.file', '/etc/yoroi/pki/' + inventory_hostname + '.pem') }}"
"""

RETURN = r"""
findings:
  description:
    - One finding per control - C(control), C(status) (pass, fail, fixed, error, skipped),
      C(expected), C(actual), C(evidence).
  returned: always
  type: list
  elements: dict
files:
  description: The files this run wrote, with their backups.
  returned: always
  type: dict
hosts:
  description: Each host of the tree and the time of its last line (epoch seconds).
  returned: always
  type: dict
  sample: {web1: 1764300000}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.log_collector import main


if __name__ == "__main__":
    main()
