#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_forwarding
short_description: journald on disk, rsyslog forwarding over RELP with TLS, sshd and sudo logs
version_added: 0.1.0
description:
  - Reads journald's configuration, the rsyslog forwarding configuration, the TLS files, the
    queue's files on disk, C(sshd -T) and C(sudo -V) once, shakes hands with each collector,
    and evaluates controls C(LOG-001) to C(LOG-006) in one pass.
  - C(LOG-001) journald keeps the journal on disk (C(Storage=persistent)) with
    O(journald_max_use) and O(journald_retention_days), in C(/etc/systemd/journald.conf.d/60-yoroi.conf);
    C(ForwardToSyslog=no), since rsyslog reads the journal itself (imjournal, its cursor kept
    in a state file) - journald's socket forwarding drops lines when rsyslog is slow or restarting.
  - C(LOG-002) rsyslog-relp is installed and C(/etc/rsyslog.d/60-yoroi-forward.conf) sends
    every line with omrelp over TLS to the first of O(collectors), each further collector
    taking the lines only while the one before is suspended; the collector is verified
    by the CA (O(ca_cert)) and its certificate name (C(tls.authMode=name)). The
    configuration is checked with C(rsyslogd -N1) before it replaces the live one.
  - C(LOG-003) one disk-assisted queue (C(queue.filename), C(queue.saveOnShutdown)) holds
    what no collector acknowledged; its size on disk now is the evidence.
  - C(LOG-004) a collector answers a TLS handshake that verifies it and a RELP open that
    accepts our certificate, and rsyslog's last impstats report (every 30 s, in
    C(/var/log/syslog)) shows an empty queue. From the client side this is what can be
    known; the collector's module reports the time of each host's last line.
  - C(LOG-005) C(sshd -T) says C(loglevel VERBOSE) (report only - the ssh role sets it, with
    C(yoroi_ssh_extra_settings)). C(LOG-006) C(sudo -V) names a syslog facility and the log
    file O(sudo_logfile) (C(/etc/sudoers.d/60-yoroi-logging), checked with C(visudo -cf)).
  - The private key is never an option - the role copies it to
    C(/etc/yoroi/log-forwarding/key.pem) (root, 0600, no_log); this module checks its owner and mode.
  - With no O(collectors) or certificates, rsyslog is left alone and LOG-002 to LOG-004 fail.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only; the TLS handshake with the collectors is made in check mode too.
  diff_mode:
    support: full
    description: Shows the configuration files written (not the certificates).
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.packages
options:
  collectors:
    description: The site's collectors, C(host) or C(host:port) (port 2514 by default); the first is the primary, the next its failover.
    type: list
    elements: str
    default: []
  ca_cert:
    description: The CA certificate (PEM text) that signed the collectors' and this host's certificates.
    type: str
    default: ""
  cert:
    description: This host's certificate (PEM text); its key is copied by the role.
    type: str
    default: ""
  queue_max_disk:
    description: The most disk space the queue may take (C(queue.maxDiskSpace)), a number with K, M, G or T.
    type: str
    default: 2G
  journald_max_use:
    description: journald's C(SystemMaxUse=).
    type: str
    default: 1G
  journald_retention_days:
    description: journald's C(MaxRetentionSec=), in days (1 to 3650).
    type: int
    default: 90
  sudo_logfile:
    description: The log file sudo writes every command to.
    type: path
    default: /var/log/sudo.log
notes:
  - Runs as root (C(become)).
"""

EXAMPLES = r"""
- name: Forward to the branch's collector and its failover
  yoroi.baseline.log_forwarding:
    packages: [rsyslog, rsyslog-relp]
    collectors: [log1.branch.example.org:2514, log2.branch.example.org:2514]
    ca_cert: "{{ lookup('ansible.builtin.file', '/etc/yoroi/pki/ca.pem') }}"
    cert: "{{ lookup('ansible.builtin.file', '/etc/yoroi/pki/' + inventory_hostname + '.pem') }}"
"""

RETURN = r"""
findings:
  description:
    - One finding per control - C(control), C(status) (pass, fail, fixed, error, skipped),
      C(expected), C(actual), C(evidence). A refused run has an C(error) finding for every
      control of the module.
  returned: always
  type: list
  elements: dict
files:
  description: The files this run wrote, with their backups.
  returned: always
  type: dict
queue:
  description: The queue's files on disk and their sizes in bytes.
  returned: always
  type: dict
  sample: {yoroi_forward.00000001: 1049490}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.log_forwarding import main


if __name__ == "__main__":
    main()
