#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Yoroi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: firewall
short_description: A default-deny inbound nftables table, management access first, proven by a fresh login
version_added: 0.1.0
description:
  - Reads C(nft -j list ruleset), C(sshd -T), the Yoroi ruleset file, C(/etc/nftables.conf) and whether
    C(nftables.service) is enabled once, and evaluates controls C(FWL-001) to C(FWL-005) in one pass.
  - Yoroi owns one table, C(table inet yoroi), with an input chain of policy drop - loopback,
    established and related, the ICMP and ICMPv6 types IPv4 and IPv6 need (echo request by O(icmp_echo)),
    then management first (the sshd port(s) from O(management_addresses), and the automation's current
    SSH client by O(keep_current_client)), then O(allow), then a rate-limited log rule (prefix
    C(yoroi-drop)); the policy drops the rest.
  - C(FWL-001) the table is loaded with its input chain's policy drop. C(FWL-002) every management
    address reaches every sshd port through a management rule before any rule of the allowlist.
    C(FWL-003) nothing else is accepted (extra accepts are named). C(FWL-004) dropped packets are
    logged with a rate limit. C(FWL-005) C(/etc/nftables.d/yoroi.nft) is the site's ruleset, included
    from C(/etc/nftables.conf), the live table matches it and C(nftables.service) is enabled.
  - The file declares, deletes and re-declares the table, so C(nft -f) replaces the Yoroi table alone,
    atomically; other tables (docker, libvirt, fail2ban) are left alone and listed. The module never
    starts or reloads C(nftables.service) (Debian's configuration begins with C(flush ruleset)); it
    enables it, so the boot loads the file.
  - Before anything is written, the candidate table is judged by the kit's access engine - C(sshd -T -C)
    of the live sshd configuration and the candidate's verdict for a new connection to sshd's port,
    per account and client address - and refused when the automation account (from every address it
    is connected from) or a break-glass account (from any management address) would lose its way in.
    The candidate passes C(nft -c -f) before it is loaded; the lockout guard (reload unit
    C(yoroi-firewall.service)) restores the previous file and table unless a fresh login confirms.
  - Where nftables cannot read rules (no C(CAP_NET_ADMIN)), every control is an C(error) naming it.
author:
  - Yoroi maintainers (@yoroi)
attributes:
  check_mode:
    support: full
    description: Reads and plans only, the pre-check included; drift has status C(fail).
  diff_mode:
    support: full
    description: Shows the ruleset file and C(/etc/nftables.conf) before and after.
extends_documentation_fragment:
  - yoroi.baseline.concern
  - yoroi.baseline.concern.guard
  - yoroi.baseline.concern.packages
options:
  management_addresses:
    description:
      - The controller's addresses or networks (IPv4 or IPv6); the sshd port(s) are accepted from them
        first. C(0.0.0.0/0) and C(::/0) are refused.
    type: list
    elements: str
    default: []
  allow:
    description:
      - The site's allowlist, each entry C(port) (1 to 65535), C(proto) (C(tcp), the default, or C(udp))
        and C(from) (addresses or networks; C(0.0.0.0/0) and C(::/0) for any source, written out).
    type: list
    elements: dict
    default: []
  ssh_ports:
    description: The sshd port(s) to keep open; empty - the C(Port) values of C(sshd -T).
    type: list
    elements: int
    default: []
  keep_current_client:
    description:
      - Accept the sshd port(s) also from the address(es) the automation is connected from now
        (C(SSH_CONNECTION) where it can be read; else every client connected to sshd).
    type: bool
    default: true
  client_address:
    description: The automation's client address as the host sees it, when known better than the module finds it.
    type: str
  icmp_echo:
    description: Answer pings (ICMP and ICMPv6 echo request).
    type: bool
    default: true
  log_rate:
    description: The rate limit of the drop log, C(N/second), C(N/minute), C(N/hour) or C(N/day).
    type: str
    default: 5/minute
  guard_timeout:
    default: 120
  guard_root:
    description: Where the lockout guard keeps its copies.
    type: path
    default: /var/lib/yoroi/guard
notes:
  - Runs as root (C(become)); loading rules needs C(CAP_NET_ADMIN).
"""

EXAMPLES = r"""
- name: Default deny, SSH from the controllers, HTTPS from the branch LAN
  yoroi.baseline.firewall:
    packages: [nftables]
    automation_account: yoroi
    management_addresses: [192.0.2.10, 2001:db8:10::/64]
    allow:
      - {port: 443, proto: tcp, from: [10.20.0.0/16]}
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
ssh_ports: {description: "The sshd ports kept open.", returned: when read, type: list, elements: int}
current_clients: {description: "The automation's client addresses found.", returned: when read, type: list, elements: str}
other_tables: {description: "The nftables tables besides Yoroi's, left alone.", returned: when read, type: list, elements: str}
precheck: {description: "The client addresses checked and the lockout problems found.", returned: when read, type: dict}
"""

from ansible_collections.yoroi.baseline.plugins.module_utils._wiring.firewall import main


if __name__ == "__main__":
    main()
